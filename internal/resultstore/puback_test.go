package resultstore

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want pubAck
		code jetstream.ErrorCode
		bad  bool
	}{
		{in: `{"stream":"SCORING_RESULTS","seq":42}`, want: pubAck{Stream: "SCORING_RESULTS", Seq: 42}},
		{in: `{"stream":"S","seq":7,"duplicate": true}`, want: pubAck{Stream: "S", Seq: 7, Duplicate: true}},
		{in: `{"stream":"S","seq": 7,"duplicate":false}`, want: pubAck{Stream: "S", Seq: 7}},
		{in: `{"stream":"S","domain":"hub","seq":18446744073709551615}`, want: pubAck{Stream: "S", Seq: 18446744073709551615}},
		{in: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"KV_X","seq":0}`, code: 10071},
		{in: `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`, code: 10077},
		{in: `{"seq":1}`, bad: true},
		{in: `not json`, bad: true},
		{in: `{"stream":"S","seq":x}`, bad: true},
	} {
		pa, err := parsePubAck([]byte(tc.in))
		var apiErr *jetstream.APIError
		switch {
		case tc.code != 0:
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != tc.code {
				t.Errorf("%s: %v, want API error %d", tc.in, err, tc.code)
			}
		case tc.bad:
			if err == nil {
				t.Errorf("%s: read as %+v", tc.in, pa)
			}
		case err != nil || pa != tc.want:
			t.Errorf("%s: %+v %v, want %+v", tc.in, pa, err, tc.want)
		}
	}
}
