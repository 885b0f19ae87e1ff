// Package wan emulates a WAN link, at the packet level, between the root
// network namespace (the client side, where adaptfs runs) and a network
// namespace (the server side, where the S3 test server runs), so that the
// kernel's TCP sees a real bottleneck queue, real round-trip times (the
// handshake included) and real packet loss.
//
//	link, err := wan.Up(ctx, wan.Config{RateMbit: 50, RTTms: 40, LossPct: 0.1})
//	defer link.Down()
//	srv := link.NSExec(ctx, "versitygw", "--port", link.ServerAddr().String()+":7070", …)
//	… connect to link.ServerAddr() from this process …
//	link.Set(wan.Config{RateMbit: 10, RTTms: 100})   // at run time, queue kept
//	c, _ := link.Counters()                            // bytes, drops, each way
//
// The link is a router namespace between two veth pairs (addresses from
// the benchmarking range 198.18.0.0/15):
//
//	root ns: N c0 ──veth── N c1 [router ns N-rt] N s1 ──veth── N s0 :netns N
//
// In the router, per direction:
//   - loss: an nftables prerouting rule drops packets with
//     `numgen random mod 1000000 < ppm`;
//   - delay and jitter: the next rule queues every packet to NFQUEUE; a
//     delay line in the process that called Up (one goroutine on a locked
//     OS thread with real-time priority) holds each packet's id until its
//     kernel arrival time plus the delay, then accepts it with a batch
//     verdict. Jitter follows a smooth random path, so it never reorders;
//   - rate and queue: HTB with one class (all flows share it) and a bfifo
//     leaf on the router's egress toward the receiver. Rate and queue
//     limit change in place, keeping queued packets.
//
// Putting the bottleneck in a router namespace rather than on the
// sender's own interface matters: packets queued on the sending host
// still belong to the sending socket, so TCP Small Queues would keep each
// flow's share of the queue to about a millisecond (no queue build-up, no
// overflow losses) and would throttle any sender whose packets wait in a
// delay line; and a drop on the sending host is reported to TCP at once
// instead of being discovered as loss. Packets entering the router through
// IP input are detached from their socket, as on a real path.
//
// TSO, GSO and GRO are off on every veth end, so queues hold and drop
// single packets. Routes on both ends set the TCP congestion control
// (Config.CongCtl, default cubic) whatever the machine default (bbr here).
//
// Everything needs root; Check tells whether this machine can build a
// link, and Require skips a test that cannot. The command
// test/cmd/wanlink drives links from the shell.
package wan
