package job

import (
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Result statuses.
const (
	StatusScored   = "scored"
	StatusDegraded = "degraded"
	StatusRejected = "rejected"
	StatusExpired  = "expired"
)

// Result is the message the worker publishes for a job
// (docs/contract.md#result-message).
// Pointer fields are null when nil.
type Result struct {
	SchemaVersion    int         `json:"schema_version"`
	JobID            string      `json:"job_id"`
	CorrelationID    string      `json:"correlation_id,omitempty"`
	Status           string      `json:"status"`
	HybridScore      *float64    `json:"hybrid_score"`
	VectorScore      *float64    `json:"vector_score"`
	PatternScore     *float64    `json:"pattern_score"`
	VectorWeight     *float64    `json:"vector_weight"`
	PatternWeight    *float64    `json:"pattern_weight"`
	WeightsAdjusted  bool        `json:"weights_adjusted"`
	AdjustmentReason *string     `json:"adjustment_reason"`
	Confidence       *float64    `json:"confidence"`
	ScoreAgreement   *float64    `json:"score_agreement"`
	ComponentScores  *Components `json:"component_scores"`
	UsedPatterns     bool        `json:"used_patterns"`
	FallbackReason   *string     `json:"fallback_reason"`
	Cache            *CacheInfo  `json:"cache"`
	Error            *ErrorInfo  `json:"error"`
	WorkerID         string      `json:"worker_id"`
	DeliveryAttempt  int         `json:"delivery_attempt"`
	LatencyMS        float64     `json:"latency_ms"`
	ScoredAt         string      `json:"scored_at"`
}

// Components are the five pattern-similarity components.
type Components struct {
	Concept      float64 `json:"concept"`
	Theme        float64 `json:"theme"`
	Domain       float64 `json:"domain"`
	Structure    float64 `json:"structure"`
	Relationship float64 `json:"relationship"`
}

// CacheInfo says where each analysis came from: memory, redis, miss or shared.
type CacheInfo struct {
	Task    string `json:"task"`
	Pattern string `json:"pattern"`
}

// ErrorInfo explains a rejected or expired job.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// AppendJSON appends r as JSON to b: the same fields and numbers as
// encoding/json, without reflection (and without HTML or U+2028 escaping). The worker
// encodes every result with it.
func (r *Result) AppendJSON(b []byte) []byte {
	b = append(b, `{"schema_version":`...)
	b = strconv.AppendInt(b, int64(r.SchemaVersion), 10)
	b = append(b, `,"job_id":`...)
	b = appendString(b, r.JobID)
	if r.CorrelationID != "" {
		b = append(b, `,"correlation_id":`...)
		b = appendString(b, r.CorrelationID)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, r.Status)
	b = appendFloatField(b, `,"hybrid_score":`, r.HybridScore)
	b = appendFloatField(b, `,"vector_score":`, r.VectorScore)
	b = appendFloatField(b, `,"pattern_score":`, r.PatternScore)
	b = appendFloatField(b, `,"vector_weight":`, r.VectorWeight)
	b = appendFloatField(b, `,"pattern_weight":`, r.PatternWeight)
	b = append(b, `,"weights_adjusted":`...)
	b = strconv.AppendBool(b, r.WeightsAdjusted)
	b = appendStringField(b, `,"adjustment_reason":`, r.AdjustmentReason)
	b = appendFloatField(b, `,"confidence":`, r.Confidence)
	b = appendFloatField(b, `,"score_agreement":`, r.ScoreAgreement)
	b = append(b, `,"component_scores":`...)
	if c := r.ComponentScores; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"concept":`...)
		b = appendFloat(b, c.Concept)
		b = append(b, `,"theme":`...)
		b = appendFloat(b, c.Theme)
		b = append(b, `,"domain":`...)
		b = appendFloat(b, c.Domain)
		b = append(b, `,"structure":`...)
		b = appendFloat(b, c.Structure)
		b = append(b, `,"relationship":`...)
		b = appendFloat(b, c.Relationship)
		b = append(b, '}')
	}
	b = append(b, `,"used_patterns":`...)
	b = strconv.AppendBool(b, r.UsedPatterns)
	b = appendStringField(b, `,"fallback_reason":`, r.FallbackReason)
	b = append(b, `,"cache":`...)
	if c := r.Cache; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"task":`...)
		b = appendString(b, c.Task)
		b = append(b, `,"pattern":`...)
		b = appendString(b, c.Pattern)
		b = append(b, '}')
	}
	b = append(b, `,"error":`...)
	if e := r.Error; e == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"code":`...)
		b = appendString(b, e.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
		b = append(b, '}')
	}
	b = append(b, `,"worker_id":`...)
	b = appendString(b, r.WorkerID)
	b = append(b, `,"delivery_attempt":`...)
	b = strconv.AppendInt(b, int64(r.DeliveryAttempt), 10)
	b = append(b, `,"latency_ms":`...)
	b = appendFloat(b, r.LatencyMS)
	b = append(b, `,"scored_at":`...)
	b = appendString(b, r.ScoredAt)
	return append(b, '}')
}

// Timestamp formats t as results carry it (RFC 3339 with nanoseconds,
// UTC), as t.UTC().Format(time.RFC3339Nano) does. Every result carries one,
// so the date and time of day are formatted once a second and only the
// fraction per call.
func Timestamp(t time.Time) string {
	t = t.UTC()
	sec := t.Unix()
	c := lastSecond.Load()
	if c == nil || c.unix != sec {
		if y := t.Year(); y < 0 || y > 9999 {
			return t.Format(time.RFC3339Nano)
		}
		c = &formattedSecond{unix: sec}
		t.AppendFormat(c.text[:0], "2006-01-02T15:04:05")
		lastSecond.Store(c)
	}
	var b [len("2006-01-02T15:04:05.999999999Z")]byte
	n := copy(b[:], c.text[:])
	if ns := t.Nanosecond(); ns != 0 {
		b[n] = '.'
		for i := 9; i > 0; i-- {
			b[n+i] = byte('0' + ns%10)
			ns /= 10
		}
		n += 10
		for b[n-1] == '0' {
			n--
		}
	}
	b[n] = 'Z'
	return string(b[:n+1])
}

// formattedSecond is one second formatted as 2006-01-02T15:04:05.
type formattedSecond struct {
	unix int64
	text [19]byte
}

var lastSecond atomic.Pointer[formattedSecond]

func appendFloatField(b []byte, name string, v *float64) []byte {
	b = append(b, name...)
	if v == nil {
		return append(b, "null"...)
	}
	return appendFloat(b, *v)
}

func appendStringField(b []byte, name string, v *string) []byte {
	b = append(b, name...)
	if v == nil {
		return append(b, "null"...)
	}
	return appendString(b, *v)
}

// appendFloat writes v as encoding/json does (shortest form; exponents only
// for very small or large magnitudes). Values here are finite.
//
// Most values a result carries are multiples of 1e-12 (scores rounded to
// twelve decimals, latencies in microseconds), and a result has thirteen:
// their digits are written from the integer v·1e12, in half the
// time of the shortest-form search (BenchmarkAppendFloat). The digits are
// the same: below 4096 a float64's spacing is under 1e-12, so of all
// decimals with at most twelve places only one rounds to v, and the
// shortest form, which has no more places than that one, is it
// (TestAppendFloat compares both on millions of values).
func appendFloat(b []byte, v float64) []byte {
	abs := v
	if abs < 0 {
		abs = -abs
	}
	if abs >= 1e-6 && abs < 4096 {
		if n := math.Round(abs * 1e12); n/1e12 == abs {
			if v < 0 {
				b = append(b, '-')
			}
			return appendMicroMicro(b, uint64(n))
		}
	}
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		b = strconv.AppendFloat(b, v, 'e', -1, 64)
		// encoding/json writes e-7, not e-07.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendMicroMicro writes n·1e-12 in fixed notation, without trailing
// zeros.
func appendMicroMicro(b []byte, n uint64) []byte {
	if ip := n / 1e12; ip < 10 { // scores and weights: one digit
		b = append(b, byte('0'+ip))
	} else {
		b = strconv.AppendUint(b, ip, 10)
	}
	frac := n % 1e12
	if frac == 0 {
		return b
	}
	places := 12
	if frac%1e6 == 0 {
		frac /= 1e6
		places -= 6
	}
	if frac%1e3 == 0 {
		frac /= 1e3
		places -= 3
	}
	for frac%10 == 0 {
		frac /= 10
		places--
	}
	// The digits go straight into b, from the last: no scratch array to
	// copy (in the worker's CPU profile that copy, a memmove call per
	// number, took more than half of this function's time).
	b = slices.Grow(b, places+1)
	l := len(b)
	b = b[:l+places+1]
	b[l] = '.'
	for i := l + places; i > l; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
