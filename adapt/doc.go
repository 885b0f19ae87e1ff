// Package adapt measures the network from per-request samples and chooses
// the upload parameters (part size, concurrency; the compression level
// through a LevelPolicy). It does no I/O, starts no goroutines and imports
// nothing else of adaptfs, so it runs on a simulated clock in tests.
//
// # Inputs
//
// The S3 client reports every HTTP attempt (Controller.Observe), the request
// body bytes as they are handed to the kernel (Controller.Progress) and,
// optionally, TCP_INFO per connection (Controller.ObserveTCP). The owner
// calls Controller.Tick every monitoring_interval with the number of requests
// in flight; the uploader reads Controller.Params, which never blocks.
//
// # Estimates (refreshed every Tick)
//
//   - goodput: Progress bytes per monitoring interval (completed bulk bodies
//     when there is no Progress source), averaged over the adaptation
//     interval; bottleneck bandwidth is its windowed maximum over 10 s.
//   - latency, in three classes that are never mixed because they include
//     different server work: TCP smoothed RTT, the wait for the response
//     after a part's last byte, and the time to first byte of small
//     requests. The primary class is TCP when it reports, else the response
//     wait, else small requests. Its propagation estimate is the minimum of
//     per-interval means over 30 s, kept sticky: it only rises when it has
//     not been seen again for 10 minutes, or when the queue persists at the
//     minimum concurrency (the path changed, or the queue is not ours).
//     TCP_INFO's own minimum RTT (TCPSample.MinRTT), when given, lowers the
//     TCP class's estimate: connections opened before a queue built carry
//     the unloaded RTT, which nothing else shows on a link kept busy.
//     RTT inflation = mean / propagation − 1; congestion = min(1, inflation).
//   - error and retry rate over 60 s; TCP loss (retransmitted / sent
//     segments) over 30 s; loss with inflation is "congestive", without it
//     "random".
//   - per-stream rate: body bytes over Start..BodyDone of completed parts
//     (30 s); request overhead: response wait + 2 RTTs (slow start), from
//     at least 3 completed parts (3 RTTs of small requests if no part
//     completes within 30 s).
//   - trend: weighted (half life 20 s) linear fit of goodput over 60 s;
//     improving/degrading when the fitted change exceeds the bandwidth
//     threshold per minute with R² ≥ 0.5, volatile when the scatter exceeds
//     it, else stable. Health grades errors, then queueing, then stability
//     and the configured targets.
//
// # Decisions
//
// Thresholds are the configured ones divided by adaptation_sensitivity. A
// proposal must hold on every Tick for adaptation_interval (twice that in
// conservative_mode, unless it is 3 thresholds strong); one parameter
// changes at most once per min_adaptation_interval (half when aggressive);
// at most max_adaptations_per_session changes are made (rollbacks are not
// counted); one change is measured at a time.
//
// Concurrency, first match wins:
//  1. error rate above max_tolerable_loss since the last concurrency change
//     (≥ 5 failures, at most 60 s back): ×0.7;
//  2. RTT inflated beyond the latency threshold (or latency above
//     target_latency_ms while the path alone is faster): step to the Vegas
//     gradient
//     n·(1+thr/2)/(1+inflation), or, when goodput fell by more than 3 bandwidth
//     thresholds by itself with every slot busy (the queue shows in response
//     samples only as parts complete), to n·(1+thr/2)·goodput/reference;
//     never below a level that recently carried this goodput without a
//     queue, nor by more than ÷16 at once. At the minimum, re-learn the
//     propagation RTT instead;
//  3. otherwise probe up while not application-limited and below the
//     ceiling: +1, ×1.5 after a step that gained ≥ 70 % of linear scaling or
//     when aggressive; ×2 under random loss (TCP loss without RTT inflation
//     caps each stream, so goodput scales with streams; measured, so one
//     interval of evidence suffices), ×4 for the session's first step,
//     until the first decrease since the link last improved, as TCP leaves
//     slow start at its first loss (a ×4 step that bought nothing is
//     halved back to its geometric midpoint and counts as one); when
//     goodput rose by itself (the link improved), jump
//     back to the best operating point of the last 10 minutes. Loss without
//     inflation does not stop probing: it is random loss, and more streams
//     help. No probing once goodput reaches target_throughput_mbps.
//
// Part size: P = 20 × overhead × per-stream rate (≈95 % of a stream's time
// sending), capped at 30 s of sending (the controller learns as parts
// complete), so that a part fails with at most 1 % probability at the
// measured failures per byte (after ≥ 3 failed parts in 10 minutes; no
// growing back for 10 minutes after such a cut), and by the memory budget;
// within the bounds and S3's limits, whole MiB. It changes when the target
// leaves a ±25 % band (or twice the bandwidth threshold).
//
// Every change is an Event with its trigger measurements and predicted
// gain. After max(min_adaptation_interval, adaptation + monitoring interval)
// — longer for part sizes, which show only as parts turn over — the goodput
// of the last adaptation interval is compared with the goodput while the
// trigger held; the measured gain is recorded, and:
//   - an increase that lost more than the bandwidth threshold, or gained
//     less while the RTT inflated, is rolled back and a ceiling is set;
//   - an increase that gained less without a queue is kept and a ceiling
//     set above it (a plateau);
//   - a decrease that lost goodput although the queue is gone (and the loss
//     is no larger than the share of streams removed) is rolled back;
//   - a part size change that lost goodput is rolled back.
//
// Ceilings and blocks last 10 minutes, doubling with each failed probe up
// to 40; a rollback halves the decision confidence. A change of the link
// (goodput moving by itself) lifts them.
//
// # Warm start
//
// NewController with a Profile starts from its parameters (clamped) and
// shows its estimates until the first samples arrive; its RTT is a prior
// trusted for a minute and its goodput the first operating point to return
// to.
package adapt
