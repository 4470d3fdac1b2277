package schemas_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/schemas"
)

func TestExamplesValidate(t *testing.T) {
	names, _ := fs.Glob(schemas.FS, "examples/*.json")
	if len(names) < 6 {
		t.Fatalf("only %d examples", len(names))
	}
	for _, name := range names {
		which := "result"
		if strings.Contains(name, "/job-") {
			which = "job"
		}
		b, _ := fs.ReadFile(schemas.FS, name)
		if err := schemas.Validate(which, b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSchemasReject(t *testing.T) {
	for _, tt := range []struct{ which, doc string }{
		{"job", `{"job_id":"a b","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":1.5}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y"}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5,"reply_subject":"a.*"}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5,"reply_subject":"scoring.jobs.x"}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5,"reply_subject":"scoring.bulk.rescore"}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5,"reply_subject":"a.` + strings.Repeat("b", 1100) + `"}`},
		{"job", `{"job_id":"a","task_description":"x","historical_pattern_text":"y","vector_similarity":0.5,"reply_subject":"$JS.API.STREAM.DELETE.X"}`},
		{"result", `{"schema_version":1,"job_id":"a","status":"scored"}`},
	} {
		if schemas.Validate(tt.which, []byte(tt.doc)) == nil {
			t.Errorf("%s accepted %s", tt.which, tt.doc)
		}
	}
}

// TestSchemaAgreesWithTheWorker holds the job schema to the worker's own
// decoder at each length limit, in ASCII and in multi-byte characters: a
// producer that validates with the schema must never send a job the worker
// rejects, and the only jobs the schema is stricter about are the ones its
// description names (non-ASCII reply subjects over 256 characters).
func TestSchemaAgreesWithTheWorker(t *testing.T) {
	type tc struct {
		field, value   string
		schemaStricter bool // the worker accepts, the schema (by design) does not
	}
	var cases []tc
	for _, ch := range []string{"a", "é", "語", "😀"} {
		for _, f := range []struct {
			name  string
			limit int
		}{{"correlation_id", 128}, {"language", 256}, {"context", 256}} {
			cases = append(cases, tc{f.name, strings.Repeat(ch, f.limit), false}, tc{f.name, strings.Repeat(ch, f.limit+1), false})
		}
		for _, n := range []int{256, 257, 1024 / len(ch), 1024/len(ch) + 1, 1024, 1025} {
			v := "r." + strings.Repeat(ch, n-2)
			cases = append(cases, tc{"reply_subject", v, ch != "a" && n > 256 && len(v) <= 1024})
		}
	}
	// Values the schema's patterns and formats decide, not its lengths.
	cases = append(cases,
		tc{"deadline", "2026-12-07T04:56:56Z", false}, tc{"deadline", "2026-12-07t04:56:56z", false},
		tc{"deadline", "2026-12-07T04:56:56.123+02:00", false}, tc{"deadline", "2026-12-07 04:56:56Z", false},
		tc{"reply_subject", "weird.a\x00b", false}, tc{"reply_subject", "a.\x07.b", false}, tc{"reply_subject", "a..b", false})
	for _, c := range cases {
		doc, _ := json.Marshal(map[string]any{"job_id": "a", "task_description": "x", "historical_pattern_text": "y",
			"vector_similarity": 0.5, c.field: c.value})
		schemaOK := schemas.Validate("job", doc) == nil
		_, _, err := job.Decode(doc, job.Limits{})
		workerOK := err == nil
		name := fmt.Sprintf("%s of %d characters (%d bytes)", c.field, utf8.RuneCountInString(c.value), len(c.value))
		switch {
		case schemaOK && !workerOK:
			t.Errorf("%s: the schema accepts it, the worker rejects it: %v", name, err)
		case !schemaOK && workerOK && !c.schemaStricter:
			t.Errorf("%s: the worker accepts it, the schema does not", name)
		case c.schemaStricter && (schemaOK || !workerOK):
			t.Errorf("%s: want the worker to accept it (%v) and the schema to refuse it (refused: %v)", name, err, !schemaOK)
		}
	}
}
