// Package job holds the wire types of hybridscore
// (docs/contract.md#job-message, docs/contract.md#result-message): the job a
// producer publishes, its strict validation into the contract's error codes,
// and the result the worker publishes, with an allocation-lean JSON encoder
// for the hot path. schemas/ describes the same shapes.
package job

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hybridscore/hybridscore/internal/combiner"
)

// Error codes of rejected and expired results.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidUTF8      = "invalid_utf8"
	CodeMissingField     = "missing_field"
	CodeInvalidField     = "invalid_field"
	CodeTooLarge         = "too_large"
	CodeDeadlineExceeded = "deadline_exceeded"
)

// Rejected tells whether code is a rejected job's error code: the job
// itself was refused (and answered so), as opposed to a job that expired.
func Rejected(code string) bool {
	switch code {
	case CodeInvalidJSON, CodeInvalidUTF8, CodeMissingField, CodeInvalidField, CodeTooLarge:
		return true
	}
	return false
}

// ErrInvalid is wrapped by every *Error: errors.Is(err, job.ErrInvalid).
var ErrInvalid = errors.New("job: invalid")

// Error is a rejected job's reason.
type Error struct {
	Code    string // one of the Code constants
	Message string
}

func (e *Error) Error() string { return "job: " + e.Code + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// The analysis settings a job gets when it names none, passed to langextract.
const (
	DefaultLanguage = "en"
	DefaultContext  = "pattern_matching"
)

// Fallback policies (on_fallback).
const (
	FallbackDegrade = "degrade"
	FallbackRetry   = "retry"
)

// Job is a validated job.
type Job struct {
	JobID                 string
	TaskDescription       string
	HistoricalPatternText string
	VectorSimilarity      float64
	// Characteristics is nil when the job had no task_characteristics.
	Characteristics *combiner.Characteristics
	ReplySubject    string // "" means scoring.results.<lane>
	CorrelationID   string
	Language        string // defaulted to DefaultLanguage
	Context         string // defaulted to DefaultContext
	OnFallback      string // defaulted to "degrade"
	Deadline        time.Time
	SchemaVersion   int
}

// Limits bound a job; zero values take the contract's defaults.
type Limits struct {
	MaxTextBytes int // per text; 0 means 16384
	MaxJobBytes  int // whole message; 0 means 65536
}

// Defaults fills zero limits.
func (l Limits) Defaults() Limits {
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = 16384
	}
	if l.MaxJobBytes <= 0 {
		l.MaxJobBytes = 65536
	}
	return l
}

// Partial is what could be read of a job that failed validation: enough to
// address and identify its rejected result.
type Partial struct {
	JobID         string // "" when unreadable or invalid
	ReplySubject  string // "" when unreadable or invalid
	CorrelationID string
}

// Decode validates data as a job. On failure it returns an *Error (wrapping
// ErrInvalid) and whatever identifying fields were readable.
//
// The job's and the partial's strings never share memory with data, which
// the caller may reuse once Decode returns. They share one allocation among
// themselves, so keeping any of them keeps all (at most the message's size)
// alive: strings.Clone a field that is to outlive the job by long.
//
// decode.go holds the scanner; it decodes exactly as json.Unmarshal into a
// struct of pointer fields did (key matching, null, duplicate keys, type and
// syntax errors and their messages), which FuzzDecodeMatchesReference checks.
func Decode(data []byte, limits Limits) (*Job, Partial, error) {
	limits = limits.Defaults()
	var p Partial
	var d decoder
	if err := d.parse(data, limits); err != nil {
		return nil, p, err
	}
	s := d.materialize() // "" where absent or null
	// Identify before judging, so even a rejected job is answered by id.
	p = identify(&d, &s)
	if err := required(&d, &s); err != nil {
		return nil, p, err
	}
	j := Job{
		JobID:                 s[fJobID],
		TaskDescription:       s[fTaskDescription],
		HistoricalPatternText: s[fHistoricalPatternText],
		VectorSimilarity:      d.vec,
		Language:              DefaultLanguage,
		Context:               DefaultContext,
		OnFallback:            FallbackDegrade,
		SchemaVersion:         1,
	}
	if err := j.validate(&d, &s, p, limits); err != nil {
		return nil, p, err
	}
	if !d.traitsSet {
		jp := new(Job)
		*jp = j
		return jp, p, nil
	}
	// One allocation for the job and its characteristics.
	both := &struct {
		j Job
		c combiner.Characteristics
	}{j: j, c: combiner.Characteristics{Complexity: s[fComplexity], FeatureLabel: s[fFeatureLabel], TaskType: s[fTaskType]}}
	both.j.Characteristics = &both.c
	return &both.j, p, nil
}

// parse checks the message as a whole (UTF-8, size, one JSON object) and
// scans its fields.
func (d *decoder) parse(data []byte, limits Limits) error {
	if !utf8.Valid(data) {
		return invalid(CodeInvalidUTF8, "message is not valid UTF-8")
	}
	if len(data) > limits.MaxJobBytes {
		return invalid(CodeTooLarge, "message is %d bytes, limit %d", len(data), limits.MaxJobBytes)
	}
	start := skipWS(data, 0)
	if start == len(data) || data[start] != '{' {
		return invalid(CodeInvalidJSON, "message is not a JSON object")
	}
	d.data, d.i = data, start
	if !d.parseObject(false) {
		return &Error{Code: CodeInvalidJSON, Message: d.syntaxErr}
	}
	if d.i = skipWS(data, d.i); d.i < len(data) {
		d.errAt("after top-level value")
		return &Error{Code: CodeInvalidJSON, Message: d.syntaxErr}
	}
	return nil
}

// identify returns the fields that address a result, each only when valid.
func identify(d *decoder, s *[nStrFields]string) (p Partial) {
	if d.str[fJobID].set && validJobID(s[fJobID]) {
		p.JobID = s[fJobID]
	}
	if d.str[fReplySubject].set && ValidReplySubject(s[fReplySubject]) {
		p.ReplySubject = s[fReplySubject]
	}
	if d.str[fCorrelationID].set && utf8.RuneCountInString(s[fCorrelationID]) <= 128 {
		p.CorrelationID = s[fCorrelationID]
	}
	return p
}

// required reports a field of the wrong type first, then a missing one.
func required(d *decoder, s *[nStrFields]string) error {
	if d.typeErr {
		return &Error{Code: CodeInvalidField, Message: d.typeErrorMessage()}
	}
	for _, k := range [...]int{fJobID, fTaskDescription, fHistoricalPatternText} {
		if s[k] == "" {
			return invalid(CodeMissingField, "field %q is required", fieldPath[k])
		}
	}
	if !d.vecSet {
		return invalid(CodeMissingField, "field %q is required", "vector_similarity")
	}
	return nil
}

// validate checks j's values and fills its optional fields; p says which
// identifying fields were valid.
func (j *Job) validate(d *decoder, s *[nStrFields]string, p Partial, limits Limits) error {
	set := func(k int) bool { return d.str[k].set }
	if p.JobID == "" {
		return invalid(CodeInvalidField, "job_id must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	if v := j.VectorSimilarity; math.IsNaN(v) || v < 0 || v > 1 {
		return invalid(CodeInvalidField, "vector_similarity %v is not in [0, 1]", v)
	}
	if set(fReplySubject) {
		if p.ReplySubject == "" {
			return invalid(CodeInvalidField, "%s", replySubjectProblem(s[fReplySubject]))
		}
		j.ReplySubject = s[fReplySubject]
	}
	if set(fCorrelationID) {
		if p.CorrelationID == "" && s[fCorrelationID] != "" {
			return invalid(CodeInvalidField, "correlation_id longer than 128 characters")
		}
		j.CorrelationID = s[fCorrelationID]
	}
	for _, f := range [...]struct {
		k   int
		dst *string
	}{{fLanguage, &j.Language}, {fContext, &j.Context}} {
		if s[f.k] == "" {
			continue
		}
		// Characters, not bytes, so that the schema's maxLength says the same.
		if utf8.RuneCountInString(s[f.k]) > 256 {
			return invalid(CodeInvalidField, "%s longer than 256 characters", fieldPath[f.k])
		}
		*f.dst = s[f.k]
	}
	if set(fOnFallback) {
		switch s[fOnFallback] {
		case FallbackDegrade:
			j.OnFallback = FallbackDegrade
		case FallbackRetry:
			j.OnFallback = FallbackRetry
		default:
			return invalid(CodeInvalidField, "on_fallback %q: want degrade or retry", s[fOnFallback])
		}
	}
	if set(fDeadline) {
		t, err := time.Parse(time.RFC3339Nano, s[fDeadline])
		if err != nil {
			return invalid(CodeInvalidField, "deadline %q is not an RFC 3339 time with an upper-case T and Z (2026-12-07T10:00:00Z, or an offset such as +02:00)", s[fDeadline])
		}
		j.Deadline = t
	}
	if d.schemaSet && string(d.schema) != "null" && string(d.schema) != "1" {
		return invalid(CodeInvalidField, "schema_version %s: only 1 is known", d.schema)
	}
	if n := len(j.TaskDescription); n > limits.MaxTextBytes {
		return invalid(CodeTooLarge, "task_description is %d bytes, limit %d", n, limits.MaxTextBytes)
	}
	if n := len(j.HistoricalPatternText); n > limits.MaxTextBytes {
		return invalid(CodeTooLarge, "historical_pattern_text is %d bytes, limit %d", n, limits.MaxTextBytes)
	}
	return nil
}

func validJobID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// ValidJobID reports whether s is a well-formed job_id.
func ValidJobID(s string) bool { return validJobID(s) }

// ValidSubject reports whether s is a NATS subject a result can be
// published to: dot-separated non-empty tokens, no wildcards, no white space.
func ValidSubject(s string) bool {
	if s == "" || len(s) > 1024 || !utf8.ValidString(s) {
		return false
	}
	// Every dot-separated token non-empty, none "*" or ">", none holding
	// white space, NUL, * or >; the last rule covers the middle one.
	return s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..") &&
		!strings.ContainsAny(s, " \t\r\n\x00*>")
}

// ValidReplySubject reports whether a job may name s as its reply subject:
// a valid subject that is not a system subject ($JS.API, $KV, ...) and not
// a job or dead-letter subject, so a job cannot inject jobs, forge dead
// letters or write to other streams' APIs.
func ValidReplySubject(s string) bool {
	return ValidSubject(s) && !strings.HasPrefix(s, "$") &&
		!strings.HasPrefix(s, "scoring.jobs.") && !strings.HasPrefix(s, "scoring.dlq.")
}

// replySubjectProblem says what makes s, which ValidReplySubject refuses,
// no reply subject.
func replySubjectProblem(s string) string {
	switch {
	case s == "":
		return "reply_subject is empty"
	case len(s) > 1024:
		return fmt.Sprintf("reply_subject of %d bytes: at most 1024", len(s))
	case !utf8.ValidString(s):
		return "reply_subject is not valid UTF-8"
	case strings.ContainsAny(s, " \t\r\n\x00"):
		return fmt.Sprintf("reply_subject %q holds white space or NUL", s)
	case strings.ContainsAny(s, "*>"):
		return fmt.Sprintf("reply_subject %q holds a wildcard (* or >): a result is published to one subject", s)
	case s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, ".."):
		return fmt.Sprintf("reply_subject %q has an empty token (a leading, trailing or doubled dot)", s)
	}
	for _, p := range [...]string{"$", "scoring.jobs.", "scoring.dlq."} {
		if strings.HasPrefix(s, p) {
			return fmt.Sprintf("reply_subject %q addresses the worker's own streams or APIs (%s)", s, p)
		}
	}
	return fmt.Sprintf("reply_subject %q is not a NATS subject", s)
}

// ValidLane reports whether s is one lane token [A-Za-z0-9_-]+.
func ValidLane(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Wire is the JSON form of a job, for producers.
type Wire struct {
	JobID                 string               `json:"job_id"`
	TaskDescription       string               `json:"task_description"`
	HistoricalPatternText string               `json:"historical_pattern_text"`
	VectorSimilarity      float64              `json:"vector_similarity"`
	TaskCharacteristics   *WireCharacteristics `json:"task_characteristics,omitempty"`
	ReplySubject          string               `json:"reply_subject,omitempty"`
	CorrelationID         string               `json:"correlation_id,omitempty"`
	Language              string               `json:"language,omitempty"`
	Context               string               `json:"context,omitempty"`
	OnFallback            string               `json:"on_fallback,omitempty"`
	Deadline              string               `json:"deadline,omitempty"`
	SchemaVersion         int                  `json:"schema_version,omitempty"`
}

// WireCharacteristics is task_characteristics in a Wire job.
type WireCharacteristics struct {
	Complexity   string `json:"complexity,omitempty"`
	FeatureLabel string `json:"feature_label,omitempty"`
	TaskType     string `json:"task_type,omitempty"`
}
