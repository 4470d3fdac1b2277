package job_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/schemas"
)

const good = `{"job_id":"j-1","task_description":"Implement OAuth2","historical_pattern_text":"Build OAuth2 login","vector_similarity":0.8`

func TestDecodeCodes(t *testing.T) {
	long := strings.Repeat("x", 16385)
	tests := []struct {
		name, doc, code, partialID string
	}{
		{"ok", good + `}`, "", "j-1"},
		{"not utf8", good + ",\"context\":\"\xff\"}", job.CodeInvalidUTF8, ""},
		{"truncated", good, job.CodeInvalidJSON, ""},
		{"array", `[1,2]`, job.CodeInvalidJSON, ""},
		{"NaN", strings.Replace(good, "0.8", "NaN", 1) + `}`, job.CodeInvalidJSON, ""},
		{"empty", ``, job.CodeInvalidJSON, ""},
		{"missing vector", `{"job_id":"j-1","task_description":"a","historical_pattern_text":"b"}`, job.CodeMissingField, "j-1"},
		{"null text", `{"job_id":"j-1","task_description":null,"historical_pattern_text":"b","vector_similarity":0.1}`, job.CodeMissingField, "j-1"},
		{"empty text", `{"job_id":"j-1","task_description":"","historical_pattern_text":"b","vector_similarity":0.1}`, job.CodeMissingField, "j-1"},
		{"missing id", `{"task_description":"a","historical_pattern_text":"b","vector_similarity":0.1}`, job.CodeMissingField, ""},
		{"vector string", strings.Replace(good, "0.8", `"0.8"`, 1) + `}`, job.CodeInvalidField, "j-1"},
		{"vector 1.5", strings.Replace(good, "0.8", "1.5", 1) + `}`, job.CodeInvalidField, "j-1"},
		{"vector -0.1", strings.Replace(good, "0.8", "-0.1", 1) + `}`, job.CodeInvalidField, "j-1"},
		{"vector 1e999", strings.Replace(good, "0.8", "1e999", 1) + `}`, job.CodeInvalidField, "j-1"},
		{"bad job id", strings.Replace(good, "j-1", "j 1", 1) + `}`, job.CodeInvalidField, ""},
		{"job id number", `{"job_id":7,"task_description":"a","historical_pattern_text":"b","vector_similarity":0.1}`, job.CodeInvalidField, ""},
		{"wildcard reply", good + `,"reply_subject":"results.>"}`, job.CodeInvalidField, "j-1"},
		{"reply into the job stream", good + `,"reply_subject":"scoring.jobs.x"}`, job.CodeInvalidField, "j-1"},
		{"reply into dead letters", good + `,"reply_subject":"scoring.dlq.x"}`, job.CodeInvalidField, "j-1"},
		{"reply to a system subject", good + `,"reply_subject":"$KV.bucket.key"}`, job.CodeInvalidField, "j-1"},
		{"bad deadline", good + `,"deadline":"tomorrow"}`, job.CodeInvalidField, "j-1"},
		{"bad fallback", good + `,"on_fallback":"pray"}`, job.CodeInvalidField, "j-1"},
		{"complexity number", good + `,"task_characteristics":{"complexity":3}}`, job.CodeInvalidField, "j-1"},
		{"characteristics list", good + `,"task_characteristics":[]}`, job.CodeInvalidField, "j-1"},
		{"schema 2", good + `,"schema_version":2}`, job.CodeInvalidField, "j-1"},
		{"long correlation", good + `,"correlation_id":"` + strings.Repeat("c", 129) + `"}`, job.CodeInvalidField, "j-1"},
		{"text too large", `{"job_id":"j-1","task_description":"` + long + `","historical_pattern_text":"b","vector_similarity":0.1}`, job.CodeTooLarge, "j-1"},
		{"job too large", `{"job_id":"j-1","pad":"` + strings.Repeat("p", 70000) + `"}`, job.CodeTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, p, err := job.Decode([]byte(tt.doc), job.Limits{})
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if j.Language != "en" || j.Context != "pattern_matching" || j.OnFallback != "degrade" || j.Characteristics != nil {
					t.Fatalf("defaults not applied: %+v", j)
				}
				return
			}
			var e *job.Error
			if !errors.As(err, &e) || e.Code != tt.code || !errors.Is(err, job.ErrInvalid) {
				t.Fatalf("err %v, want code %s", err, tt.code)
			}
			if p.JobID != tt.partialID {
				t.Fatalf("partial job id %q, want %q", p.JobID, tt.partialID)
			}
		})
	}
}

func TestDecodeFull(t *testing.T) {
	b, _ := schemas.FS.ReadFile("examples/job-full.json")
	j, _, err := job.Decode(b, job.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Characteristics == nil || j.Characteristics.Complexity != "complex" || j.OnFallback != "retry" || j.Deadline.Year() != 2030 || j.ReplySubject != "scoring.results.rescore" {
		t.Fatalf("%+v", j)
	}
}

func f(v float64) *float64 { return &v }
func s(v string) *string   { return &v }

func TestAppendJSONMatchesEncodingJSONAndSchema(t *testing.T) {
	results := []job.Result{
		{SchemaVersion: 1, JobID: "a", CorrelationID: "c<\"\\\n\x01\xff>", Status: "scored", HybridScore: f(0.798), VectorScore: f(0.85), PatternScore: f(0.72),
			VectorWeight: f(0.6), PatternWeight: f(0.4), WeightsAdjusted: true, AdjustmentReason: s("complexity"), Confidence: f(0.68295), ScoreAgreement: f(1e-7),
			ComponentScores: &job.Components{Concept: 1.0 / 3, Theme: 1, Structure: 0.5}, UsedPatterns: true, Cache: &job.CacheInfo{Task: "memory", Pattern: "shared"},
			WorkerID: "w", DeliveryAttempt: 1, LatencyMS: 0.123, ScoredAt: "2026-11-26T12:00:00Z"},
		{SchemaVersion: 1, JobID: "b", Status: "rejected", Error: &job.ErrorInfo{Code: "invalid_json", Message: "bad \"json\""}, WorkerID: "w", DeliveryAttempt: 3, ScoredAt: "2026-11-26T12:00:00Z"},
		{SchemaVersion: 1, JobID: "c", Status: "degraded", HybridScore: f(0), VectorScore: f(0), VectorWeight: f(1), PatternWeight: f(0), FallbackReason: s("timeout"),
			Cache: &job.CacheInfo{Task: "miss", Pattern: "miss"}, WorkerID: "w", DeliveryAttempt: 1, LatencyMS: 12, ScoredAt: "2026-11-26T12:00:00Z"},
	}
	for _, r := range results {
		fast := r.AppendJSON(nil)
		var back job.Result
		if err := json.Unmarshal(fast, &back); err != nil {
			t.Fatalf("%s: %v", fast, err)
		}
		std, _ := json.Marshal(r)
		if r.ScoreAgreement != nil && !strings.Contains(string(fast), `"score_agreement":`+strings.Split(strings.Split(string(std), `"score_agreement":`)[1], ",")[0]) {
			t.Errorf("numbers differ from encoding/json:\n%s\n%s", fast, std)
		}
		var want job.Result
		_ = json.Unmarshal(std, &want)
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("fast encoder differs:\n%s\n%s", fast, std)
		}
		if err := schemas.Validate("result", fast); err != nil {
			t.Fatalf("%s: %v", fast, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{good + `}`, good + `,"task_characteristics":{"complexity":"complex"},"deadline":"2030-01-01T00:00:00Z"}`, `[]`, `{"job_id":null}`, "\xff"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, _, err := job.Decode(data, job.Limits{})
		if err != nil {
			var e *job.Error
			if !errors.As(err, &e) {
				t.Fatalf("error outside the taxonomy: %v", err)
			}
			return
		}
		if !job.ValidJobID(j.JobID) || !(j.VectorSimilarity >= 0 && j.VectorSimilarity <= 1) {
			t.Fatalf("invalid job accepted: %+v", j)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	doc, _ := schemas.FS.ReadFile("examples/job-full.json")
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = job.Decode(doc, job.Limits{})
	}
}

func TestResultSubject(t *testing.T) {
	cases := map[string]string{
		"job-1":       "scoring.results.default.job-1",
		"batch.2.a:b": "scoring.results.default.batch~2~a:b",
		"a..b":        "scoring.results.default.a~~b",
		"bad id>":     "scoring.results.default.=YmFkIGlkPg",
	}
	seen := map[string]string{}
	for id, want := range cases {
		got := job.ResultSubject("default", id)
		if got != want {
			t.Errorf("ResultSubject(%q) = %q, want %q", id, got, want)
		}
		if !job.ValidSubject(got) {
			t.Errorf("ResultSubject(%q) = %q is not a valid subject", id, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share %q", id, other, got)
		}
		seen[got] = id
	}
}
