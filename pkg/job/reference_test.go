package job

// referenceDecode is job.Decode as it was before the hand-written scanner:
// encoding/json into a struct of pointers, then the contract's checks. It is
// kept verbatim as the oracle of FuzzDecodeMatchesReference; do not "fix" it
// without fixing Decode the same way.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hybridscore/hybridscore/internal/combiner"
)

type refWire struct {
	JobID                 *string          `json:"job_id"`
	TaskDescription       *string          `json:"task_description"`
	HistoricalPatternText *string          `json:"historical_pattern_text"`
	VectorSimilarity      *float64         `json:"vector_similarity"`
	TaskCharacteristics   *wireTraits      `json:"task_characteristics"`
	ReplySubject          *string          `json:"reply_subject"`
	CorrelationID         *string          `json:"correlation_id"`
	Language              *string          `json:"language"`
	Context               *string          `json:"context"`
	OnFallback            *string          `json:"on_fallback"`
	Deadline              *string          `json:"deadline"`
	SchemaVersion         *json.RawMessage `json:"schema_version"`
}

// wireTraits keeps the old type's name, which shows in type-error messages
// ("want job.wireTraits"); this file is in package job so that it prints the
// same.
type wireTraits struct {
	Complexity   *string `json:"complexity"`
	FeatureLabel *string `json:"feature_label"`
	TaskType     *string `json:"task_type"`
}

func refInvalid(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func referenceDecode(data []byte, limits Limits) (*Job, Partial, error) {
	limits = limits.Defaults()
	var p Partial
	if !utf8.Valid(data) {
		return nil, p, refInvalid(CodeInvalidUTF8, "message is not valid UTF-8")
	}
	if len(data) > limits.MaxJobBytes {
		return nil, p, refInvalid(CodeTooLarge, "message is %d bytes, limit %d", len(data), limits.MaxJobBytes)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, p, refInvalid(CodeInvalidJSON, "message is not a JSON object")
	}
	var w refWire
	err := json.Unmarshal(data, &w)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return nil, p, refInvalid(CodeInvalidJSON, "%v", err)
	}
	// Identify before judging, so even a rejected job is answered by id.
	if w.JobID != nil && ValidJobID(*w.JobID) {
		p.JobID = *w.JobID
	}
	if w.ReplySubject != nil && ValidReplySubject(*w.ReplySubject) {
		p.ReplySubject = *w.ReplySubject
	}
	if w.CorrelationID != nil && utf8.RuneCountInString(*w.CorrelationID) <= 128 {
		p.CorrelationID = *w.CorrelationID
	}
	if typeErr != nil {
		return nil, p, refInvalid(CodeInvalidField, "field %q: want %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"job_id", w.JobID}, {"task_description", w.TaskDescription}, {"historical_pattern_text", w.HistoricalPatternText}} {
		if f.v == nil || *f.v == "" {
			return nil, p, refInvalid(CodeMissingField, "field %q is required", f.name)
		}
	}
	if w.VectorSimilarity == nil {
		return nil, p, refInvalid(CodeMissingField, "field %q is required", "vector_similarity")
	}
	j := &Job{
		JobID:                 *w.JobID,
		TaskDescription:       *w.TaskDescription,
		HistoricalPatternText: *w.HistoricalPatternText,
		VectorSimilarity:      *w.VectorSimilarity,
		Language:              "en",
		Context:               "pattern_matching",
		OnFallback:            FallbackDegrade,
		SchemaVersion:         1,
	}
	if !ValidJobID(j.JobID) {
		return nil, p, refInvalid(CodeInvalidField, "job_id must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	if v := j.VectorSimilarity; math.IsNaN(v) || v < 0 || v > 1 {
		return nil, p, refInvalid(CodeInvalidField, "vector_similarity %v is not in [0, 1]", v)
	}
	if w.ReplySubject != nil {
		if !ValidReplySubject(*w.ReplySubject) {
			return nil, p, refInvalid(CodeInvalidField, "%s", replySubjectProblem(*w.ReplySubject))
		}
		j.ReplySubject = *w.ReplySubject
	}
	if w.CorrelationID != nil {
		if utf8.RuneCountInString(*w.CorrelationID) > 128 {
			return nil, p, refInvalid(CodeInvalidField, "correlation_id longer than 128 characters")
		}
		j.CorrelationID = *w.CorrelationID
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"language", w.Language, &j.Language}, {"context", w.Context, &j.Context}} {
		if f.v == nil || *f.v == "" {
			continue
		}
		if utf8.RuneCountInString(*f.v) > 256 {
			return nil, p, refInvalid(CodeInvalidField, "%s longer than 256 characters", f.name)
		}
		*f.dst = *f.v
	}
	if w.OnFallback != nil {
		switch *w.OnFallback {
		case FallbackDegrade, FallbackRetry:
			j.OnFallback = *w.OnFallback
		default:
			return nil, p, refInvalid(CodeInvalidField, "on_fallback %q: want degrade or retry", *w.OnFallback)
		}
	}
	if w.Deadline != nil {
		t, err := time.Parse(time.RFC3339Nano, *w.Deadline)
		if err != nil {
			return nil, p, refInvalid(CodeInvalidField, "deadline %q is not an RFC 3339 time with an upper-case T and Z (2026-12-07T10:00:00Z, or an offset such as +02:00)", *w.Deadline)
		}
		j.Deadline = t
	}
	if w.SchemaVersion != nil && string(*w.SchemaVersion) != "null" && string(*w.SchemaVersion) != "1" {
		return nil, p, refInvalid(CodeInvalidField, "schema_version %s: only 1 is known", *w.SchemaVersion)
	}
	if t := w.TaskCharacteristics; t != nil {
		c := &combiner.Characteristics{}
		if t.Complexity != nil {
			c.Complexity = *t.Complexity
		}
		if t.FeatureLabel != nil {
			c.FeatureLabel = *t.FeatureLabel
		}
		if t.TaskType != nil {
			c.TaskType = *t.TaskType
		}
		j.Characteristics = c
	}
	if n := len(j.TaskDescription); n > limits.MaxTextBytes {
		return nil, p, refInvalid(CodeTooLarge, "task_description is %d bytes, limit %d", n, limits.MaxTextBytes)
	}
	if n := len(j.HistoricalPatternText); n > limits.MaxTextBytes {
		return nil, p, refInvalid(CodeTooLarge, "historical_pattern_text is %d bytes, limit %d", n, limits.MaxTextBytes)
	}
	return j, p, nil
}

// referenceValidSubject is ValidSubject as it was, token by token.
func referenceValidSubject(s string) bool {
	if s == "" || len(s) > 1024 || !utf8.ValidString(s) {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		if strings.ContainsAny(tok, " \t\r\n\x00*>") {
			return false
		}
	}
	return true
}
