package health

import (
	"context"
	"testing"
)

// With NATS down the streams cannot be known: they are not reported
// healthy, and the warning is NATS's alone.
func TestStreamsUnknownWithoutNATS(t *testing.T) {
	up := true
	c := &Checker{NATS: func() bool { return up }, Streams: func() []string { return nil }}
	if r := c.Assess(context.Background()); r.Components["streams"] != Healthy || r.Status != Healthy {
		t.Fatalf("NATS up: %+v", r)
	}
	up = false
	r := c.Assess(context.Background())
	if r.Components["streams"] != Unhealthy || r.Status != Unhealthy || len(r.Warnings) != 1 || r.Warnings[0] != WarnNATS {
		t.Fatalf("NATS down: %+v", r)
	}
}
