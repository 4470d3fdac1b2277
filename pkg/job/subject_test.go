package job_test

import (
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
