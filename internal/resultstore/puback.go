package resultstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// pubAck is what the pipeline reads of a JetStream PubAck.
type pubAck struct {
	Stream    string
	Seq       uint64
	Duplicate bool
}

var errBadPubAck = errors.New("resultstore: unreadable PubAck")

// parsePubAck reads a PubAck without reflection; an error answer comes back
// as the *jetstream.APIError it holds, so callers match its ErrorCode.
// The server writes a PubAck as {"stream":"S",["domain":"D",]"seq":N
// [,"duplicate": true]}; a stream name with escapes is decoded the slow way.
func parsePubAck(b []byte) (pubAck, error) {
	var pa pubAck
	if bytes.Contains(b, []byte(`"error"`)) {
		var e struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
			return pa, errBadPubAck
		}
		return pa, e.Error
	}
	rest, ok := after(b, `"stream":"`)
	if !ok {
		return pa, errBadPubAck
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return slowPubAck(b)
	}
	pa.Stream = string(rest[:end])
	rest, ok = after(b, `"seq":`)
	if !ok {
		return pa, errBadPubAck
	}
	rest = bytes.TrimLeft(rest, " ")
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return pa, errBadPubAck
	}
	pa.Seq = seq
	if rest, ok := after(b, `"duplicate":`); ok {
		pa.Duplicate = bytes.HasPrefix(bytes.TrimLeft(rest, " "), []byte("true"))
	}
	return pa, nil
}

func after(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	return b[i+len(key):], true
}

func slowPubAck(b []byte) (pubAck, error) {
	var v struct {
		Stream    string `json:"stream"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Stream == "" {
		return pubAck{}, errBadPubAck
	}
	return pubAck{Stream: v.Stream, Seq: v.Seq, Duplicate: v.Duplicate}, nil
}
