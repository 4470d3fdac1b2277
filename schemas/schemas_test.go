package schemas_test

import (
	"io/fs"
	"strings"
	"testing"

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
