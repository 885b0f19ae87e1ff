package adapt

import (
	"fmt"
	"time"
)

// Units in JSON names: _bytes, _seconds, and _bps for bits per second.
// Rates, ratios and 0..1 levels carry no unit.

// Snapshot is everything the controller knows, for the stats files: one
// consistent copy taken under the controller's lock.
type Snapshot struct {
	At       time.Time `json:"at"`
	Adaptive bool      `json:"adaptive"`
	// Warm is true while the estimates still come from the saved profile
	// (no samples yet this session).
	Warm      bool      `json:"warm"`
	Health    Health    `json:"health"`
	Estimates Estimates `json:"estimates"`
	Trend     Trend     `json:"trend"`
	Params    ParamView `json:"params"`
	Bounds    Bounds    `json:"bounds"`
	// Decision is the controller's own state: what it holds back from and
	// how much it trusts its last decisions.
	Decision DecisionState `json:"decision"`
	Counters Counters      `json:"counters"`
	Events   []Event       `json:"events"` // oldest first, the last MaxEvents
}

// Estimates are the link estimates, refreshed every monitoring interval.
type Estimates struct {
	// GoodputBps is the aggregate rate of request body bytes handed to the
	// kernel, over the last adaptation interval.
	GoodputBps float64 `json:"goodput_bps"`
	// BottleneckBandwidthBps is the windowed maximum (10 s) of the goodput
	// per monitoring interval (BBR's bottleneck bandwidth estimate).
	BottleneckBandwidthBps float64 `json:"bottleneck_bandwidth_bps"`
	// Utilization is goodput over bottleneck bandwidth.
	Utilization float64 `json:"utilization"`
	// PropagationRTTSeconds is the windowed minimum of the latency the
	// inflation is measured against (RTTSource).
	PropagationRTTSeconds float64 `json:"propagation_rtt_seconds"`
	// SmoothedRTTSeconds is the current smoothed latency from the same
	// source.
	SmoothedRTTSeconds float64 `json:"smoothed_rtt_seconds"`
	// RTTSource is "tcp" (TCP_INFO srtt), "response" (wait for the
	// response after a part's last byte) or "request" (latency of small
	// requests); "" before any sample.
	RTTSource string `json:"rtt_source"`
	// RTTInflation is smoothed / propagation - 1: queueing.
	RTTInflation float64 `json:"rtt_inflation"`
	// Congestion is the inflation as a level: 0 = empty queue, 1 = the
	// queue adds at least one propagation RTT.
	Congestion float64 `json:"congestion"`
	// JitterSeconds is the RFC 3550 jitter of the latency samples; the
	// standard deviation is over the last 30 s.
	JitterSeconds    float64 `json:"jitter_seconds"`
	RTTStddevSeconds float64 `json:"rtt_stddev_seconds"`
	// ErrorRate and RetryRate are failed and retried attempts over all
	// attempts in the last 60 s.
	ErrorRate float64 `json:"error_rate"`
	RetryRate float64 `json:"retry_rate"`
	// TCPLossRate is retransmitted over sent segments in the last 30 s,
	// from TCP_INFO; -1 without TCP samples.
	TCPLossRate float64 `json:"tcp_loss_rate"`
	// LossKind is "none", "random" (errors or loss without RTT inflation:
	// the path, more streams help) or "congestive" (with inflation: a full
	// queue, fewer streams help).
	LossKind string `json:"loss_kind"`
	// PerStreamBps is the body rate of one request while it sends.
	PerStreamBps float64 `json:"per_stream_bps"`
	// RequestOverheadSeconds is the per-request time not spent sending
	// the body (response wait plus slow start), which parts amortize.
	RequestOverheadSeconds float64 `json:"request_overhead_seconds"`
	// InFlight is the mean number of requests in flight over the last
	// adaptation interval; AppLimited is true when it stays below the
	// concurrency limit (not enough data to upload to probe the link).
	InFlight   float64 `json:"in_flight"`
	AppLimited bool    `json:"app_limited"`
	// TargetPartSizeBytes is the part size the estimates call for, before
	// hysteresis.
	TargetPartSizeBytes int64 `json:"target_part_size_bytes"`
}

// Trend is the direction of goodput over a weighted history (60 s, half
// life 20 s).
type Trend struct {
	Direction  TrendDirection `json:"direction"`
	Confidence float64        `json:"confidence"` // 0..1
	// ChangePerMinute is the fitted relative change of goodput per minute.
	ChangePerMinute float64 `json:"change_per_minute"`
	// Variation is the residual coefficient of variation around the fit.
	Variation float64 `json:"variation"`
}

// TrendDirection is one of the Trend* constants.
type TrendDirection string

// Trend directions.
const (
	TrendUnknown   TrendDirection = "unknown"
	TrendImproving TrendDirection = "improving"
	TrendDegrading TrendDirection = "degrading"
	TrendStable    TrendDirection = "stable"
	TrendVolatile  TrendDirection = "volatile"
)

// Health summarizes the link for humans.
type Health int

// Health levels, best first. HealthUnknown means no samples yet.
const (
	HealthUnknown Health = iota
	HealthExcellent
	HealthGood
	HealthFair
	HealthPoor
	HealthCritical
)

func (h Health) String() string {
	switch h {
	case HealthUnknown:
		return "Unknown"
	case HealthExcellent:
		return "Excellent"
	case HealthGood:
		return "Good"
	case HealthFair:
		return "Fair"
	case HealthPoor:
		return "Poor"
	case HealthCritical:
		return "Critical"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// MarshalText writes the name, so JSON carries "Good" rather than 2.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (h *Health) UnmarshalText(b []byte) error {
	for l := HealthUnknown; l <= HealthCritical; l++ {
		if l.String() == string(b) {
			*h = l
			return nil
		}
	}
	return fmt.Errorf("unknown health %q", b)
}

// ParamView is Params with units in the JSON names.
type ParamView struct {
	PartSizeBytes int64 `json:"part_size_bytes"`
	Concurrency   int   `json:"concurrency"`
}

// Bounds are the limits the parameters stay within.
type Bounds struct {
	MinPartSizeBytes int64 `json:"min_part_size_bytes"`
	MaxPartSizeBytes int64 `json:"max_part_size_bytes"`
	MinConcurrency   int   `json:"min_concurrency"`
	MaxConcurrency   int   `json:"max_concurrency"`
}

// DecisionState is what the controller holds itself to.
type DecisionState struct {
	// Confidence in the controller's own decisions, 0..1: halved by each
	// rollback, recovered by changes that deliver.
	Confidence float64 `json:"confidence"`
	// Pending is the parameter whose last change is still being measured.
	Pending string `json:"pending,omitempty"`
	// ConcurrencyCeiling: no probing at or above it until
	// CeilingUntil (0 = none).
	ConcurrencyCeiling int       `json:"concurrency_ceiling,omitempty"`
	CeilingUntil       time.Time `json:"ceiling_until,omitzero"`
	// NoIncreaseUntil and NoDecreaseUntil block a direction of concurrency
	// after a rollback.
	NoIncreaseUntil time.Time `json:"no_increase_until,omitzero"`
	NoDecreaseUntil time.Time `json:"no_decrease_until,omitzero"`
	// LimitReached is true once max_adaptations_per_session is spent.
	LimitReached bool `json:"limit_reached"`
}

// Counters are totals since the controller started.
type Counters struct {
	Requests        uint64 `json:"requests"`
	BulkRequests    uint64 `json:"bulk_requests"`
	FailedRequests  uint64 `json:"failed_requests"`
	RetriedRequests uint64 `json:"retried_requests"`
	ProgressBytes   uint64 `json:"progress_bytes"`
	CompletedBytes  uint64 `json:"completed_bytes"` // bodies of successful bulk requests
	TCPSamples      uint64 `json:"tcp_samples"`
	Ticks           uint64 `json:"ticks"`
	Adaptations     uint64 `json:"adaptations"` // changes, rollbacks excluded
	Rollbacks       uint64 `json:"rollbacks"`
	MinRTTRelearned uint64 `json:"min_rtt_relearned"`
	DroppedSamples  uint64 `json:"dropped_samples"` // without a valid start and end
}

// Event is one parameter change: what, why, and what it brought.
type Event struct {
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// Param is ParamPartSize (Old, New in bytes) or ParamConcurrency
	// (requests), or a name a LevelPolicy records.
	Param  string  `json:"param"`
	Old    float64 `json:"old"`
	New    float64 `json:"new"`
	Reason string  `json:"reason"`
	// Trigger holds the measurements that triggered the change, with
	// units in the names.
	Trigger map[string]float64 `json:"trigger"`
	// PredictedGain is the expected relative change of goodput.
	PredictedGain float64 `json:"predicted_gain"`
	// MeasuredGain is goodput after over before, minus one, filled in once
	// the change had an adaptation interval to show its effect.
	MeasuredGain *float64 `json:"measured_gain"`
	// RolledBack marks an event that undoes event Reverts.
	RolledBack bool   `json:"rolled_back"`
	Reverts    uint64 `json:"reverts,omitempty"`
}

// Parameter names in events.
const (
	ParamPartSize    = "part_size_bytes"
	ParamConcurrency = "concurrency"
)

// MaxEvents is how many events a Snapshot keeps.
const MaxEvents = 256

// Profile is what the controller learned about an endpoint, to start from
// next time (the caller keys it by endpoint and stores it as JSON). Zero
// fields are unknown.
type Profile struct {
	Version                int       `json:"version"`
	UpdatedAt              time.Time `json:"updated_at"`
	PartSizeBytes          int64     `json:"part_size_bytes"`
	Concurrency            int       `json:"concurrency"`
	GoodputBps             float64   `json:"goodput_bps"`
	BottleneckBandwidthBps float64   `json:"bottleneck_bandwidth_bps"`
	PropagationRTTSeconds  float64   `json:"propagation_rtt_seconds"`
	RTTSource              string    `json:"rtt_source"`
	PerStreamBps           float64   `json:"per_stream_bps"`
	RequestOverheadSeconds float64   `json:"request_overhead_seconds"`
	ErrorRate              float64   `json:"error_rate"`
	// CompressionLevel is the level the compression policy ended at
	// (a name; set by the owner of the policy).
	CompressionLevel string `json:"compression_level,omitempty"`
}

// ProfileVersion is the Profile format written by this package.
const ProfileVersion = 1
