package job_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hybridscore/hybridscore/pkg/job"
)

func TestJobIDOfMsgID(t *testing.T) {
	for _, tc := range []struct{ lane, msgID, want string }{
		{"a", job.MsgID("a", "job-1"), "job-1"},
		{"a", "job-1", "job-1"},             // a producer that sets the job_id alone
		{"b", job.MsgID("a", "job-1"), ""},  // another lane's
		{"a", job.MsgID("a", "bad id"), ""}, // not a job id
		{"a", "requeue-SCORING_JOBS-1", "requeue-SCORING_JOBS-1"},
		{"a", "", ""},
		{"a", job.ContentMsgID("a", "job-1", "0123abcd"), "job-1"}, // a corrected job's
		{"b", job.ContentMsgID("a", "job-1", "0123abcd"), ""},
	} {
		if got := job.JobIDOfMsgID(tc.lane, tc.msgID); got != tc.want {
			t.Errorf("JobIDOfMsgID(%q, %q) = %q, want %q", tc.lane, tc.msgID, got, tc.want)
		}
	}
}

// A refused reply subject is refused with what is wrong with it.
func TestReplySubjectRefusalSaysWhy(t *testing.T) {
	for subject, want := range map[string]string{
		"":                               "reply_subject is empty",
		"walkb.inv. space":               "white space",
		"a..b":                           "empty token",
		"x.":                             "empty token",
		"a.*":                            "wildcard",
		"$SYS.REQ.SERVER.PING":           "own streams or APIs ($)",
		"scoring.jobs.x":                 "own streams or APIs (scoring.jobs.)",
		"a." + strings.Repeat("b", 1100): "of 1102 bytes: at most 1024",
	} {
		data, _ := json.Marshal(map[string]any{"job_id": "a", "task_description": "x", "historical_pattern_text": "y", "vector_similarity": 0.5, "reply_subject": subject})
		_, _, err := job.Decode(data, job.Limits{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reply_subject %.40q: %v, want it to say %q", subject, err, want)
		}
	}
}
