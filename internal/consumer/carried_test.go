package consumer

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestCarriedJobID(t *testing.T) {
	for _, c := range []struct {
		msgID, jobID, want string
	}{
		{"replay-abc-5", "bad-1", "bad-1"},
		{"requeue-SCORING_JOBS-abc-7", "orig-1", "orig-1"},
		{"mine-1", "victim-1", ""},            // a producer's message: not believed
		{"", "victim-1", ""},                  // no Nats-Msg-Id at all
		{"replay-abc-5", "not a job id!", ""}, // invalid
		{"replay-abc-5", "", ""},              // none carried
		{"Replay-abc-5", "bad-1", ""},         // prefixes are exact
	} {
		h := nats.Header{}
		if c.msgID != "" {
			h.Set(jetstream.MsgIDHeader, c.msgID)
		}
		if c.jobID != "" {
			h.Set(HeaderJobID, c.jobID)
		}
		if got := CarriedJobID(h); got != c.want {
			t.Errorf("CarriedJobID(%q, %q) = %q, want %q", c.msgID, c.jobID, got, c.want)
		}
	}
}
