package resultstore

import (
	"encoding/json"
	"testing"

	"github.com/hybridscore/hybridscore/pkg/job"
)

// A repeat is the stored answer byte for byte, but for the requester's own
// correlation_id, in the place the worker's encoder gives it.
func TestAsRequested(t *testing.T) {
	enc := func(corr string) []byte {
		h := 0.5
		r := job.Result{SchemaVersion: 1, JobID: "j-1", CorrelationID: corr, Status: job.StatusScored, HybridScore: &h, WorkerID: "w<1>&"}
		return r.AppendJSON(nil)
	}
	for _, tc := range []struct{ stored, mine string }{
		{"", ""}, {"first", "first"}, {"first", "second <&> \u2028"}, {"first", ""}, {"", "second"},
	} {
		got, corr := asRequested(enc(tc.stored), enc(tc.mine))
		if string(got) != string(enc(tc.mine)) {
			t.Errorf("stored %q, requested by %q: got\n%s\nwant\n%s", tc.stored, tc.mine, got, enc(tc.mine))
		}
		if (corr == "") != (tc.stored == tc.mine) || !json.Valid(got) {
			t.Errorf("stored %q, requested by %q: corr %q, valid %v", tc.stored, tc.mine, corr, json.Valid(got))
		}
	}
	// Fields of another version are kept as they are.
	stored := []byte(`{"schema_version":1,"job_id":"j-1","correlation_id":"a","status":"scored","extra":{"x":[1,2]}}`)
	if got, _ := asRequested(stored, []byte(`{"job_id":"j-1","correlation_id":"b"}`)); string(got) != `{"schema_version":1,"job_id":"j-1","correlation_id":"b","status":"scored","extra":{"x":[1,2]}}` {
		t.Errorf("got %s", got)
	}
}
