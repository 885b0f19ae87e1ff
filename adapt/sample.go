package adapt

import (
	"math"
	"time"
)

// Clock tells the time; the owner passes a real clock, tests a simulated
// one. The controller never sleeps.
type Clock interface{ Now() time.Time }

// RequestSample is one HTTP attempt as the S3 client measured it.
type RequestSample struct {
	// Bulk is true for requests that carried a part or object body
	// (UploadPart, PutObject), false for small requests (create, complete,
	// HEAD, LIST...).
	Bulk  bool
	Bytes int64 // request body bytes sent
	// Start is when the attempt started, BodyDone when the last body byte
	// was handed to the kernel, FirstByte when the first response byte
	// arrived, End when the attempt ended. BodyDone and FirstByte may be
	// zero (never reached).
	Start, BodyDone, FirstByte, End time.Time
	// Failed is a transport error, timeout, reset, 5xx, 429 or SlowDown.
	Failed bool
	// Retry is true when this attempt repeats an earlier one.
	Retry bool
}

// TCPSample is the kernel's view of one connection (TCP_INFO). It is an
// optional source: every estimate works without it.
type TCPSample struct {
	// Conn identifies the connection; SegsOut and TotalRetrans are
	// cumulative per connection, so deltas are taken per Conn.
	Conn         uint64
	At           time.Time
	SRTT, RTTVar time.Duration
	// MinRTT is the kernel's windowed minimum RTT of the connection
	// (tcpi_min_rtt), 0 if unknown. Connections opened before a queue
	// built up carry the unloaded RTT, which nothing else shows once
	// the link is kept busy.
	MinRTT          time.Duration
	SegsOut         uint64
	TotalRetrans    uint64
	DeliveryRateBps float64 // bits per second
	Cwnd            uint32  // segments
}

// sampleAcc accumulates the samples of one monitoring interval.
type sampleAcc struct {
	attempts, failed, retries int
	bulk, bulkFailed          int
	bulkWireBytes             int64   // body bytes of all bulk attempts, failed ones included
	okBytes                   int64   // bodies of successful bulk attempts
	bodyBytes                 int64   // of successful bulk attempts with a BodyDone
	bodySeconds               float64 // their Start..BodyDone
	lat                       [nClass]latAcc
	tcpSegs, tcpRetrans       uint64
	tcpRTTVar                 float64 // sum of RTTVar seconds, with lat[classTCP].n
	tcpMinRTT                 float64 // smallest MinRTT reported, seconds; 0 = none
}

func (a *sampleAcc) add(b *sampleAcc) {
	a.attempts += b.attempts
	a.failed += b.failed
	a.retries += b.retries
	a.bulk += b.bulk
	a.bulkFailed += b.bulkFailed
	a.bulkWireBytes += b.bulkWireBytes
	a.okBytes += b.okBytes
	a.bodyBytes += b.bodyBytes
	a.bodySeconds += b.bodySeconds
	for i := range a.lat {
		a.lat[i].add(b.lat[i])
	}
	a.tcpSegs += b.tcpSegs
	a.tcpRetrans += b.tcpRetrans
	a.tcpRTTVar += b.tcpRTTVar
	if b.tcpMinRTT > 0 && (a.tcpMinRTT == 0 || b.tcpMinRTT < a.tcpMinRTT) {
		a.tcpMinRTT = b.tcpMinRTT
	}
}

// latAcc sums latencies (seconds) for a mean and a standard deviation.
type latAcc struct {
	n          int
	sum, sumSq float64
}

func (l *latAcc) put(x float64) {
	l.n++
	l.sum += x
	l.sumSq += x * x
}

func (l *latAcc) add(b latAcc) {
	l.n += b.n
	l.sum += b.sum
	l.sumSq += b.sumSq
}

func (l latAcc) mean() float64 { return l.sum / float64(l.n) }

func (l latAcc) stddev() float64 {
	if l.n < 2 {
		return 0
	}
	m := l.mean()
	v := l.sumSq/float64(l.n) - m*m
	if v < 0 {
		return 0
	}
	return math.Sqrt(v)
}

// Latency classes. Each has its own propagation estimate, because they
// include different server work: inflation compares like with like.
const (
	classTCP  = iota // TCP_INFO smoothed RTT: the network alone
	classResp        // wait for the response after a part's last byte
	classReq         // time to first byte of small requests
	nClass
)

// className is the RTTSource name of a class.
func className(class int) string {
	switch class {
	case classTCP:
		return "tcp"
	case classResp:
		return "response"
	}
	return "request"
}
