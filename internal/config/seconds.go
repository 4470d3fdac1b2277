package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Timeout is a duration setting kept in seconds. It reads Go's duration
// notation, as every other duration setting does ("10s", "1m30s", "500ms"),
// and, for settings that took a number of seconds before, a bare number
// ("10.0", "60"): one notation for every timeout, and the old form still
// accepted.
type Timeout float64

// UnmarshalText reads "10s" or "10.0" (seconds). kong and Defaults use it.
func (t *Timeout) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		*t = Timeout(x)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 10s or 1m30s (or seconds, such as 10.0), got %q", s)
	}
	*t = Timeout(d.Seconds())
	return nil
}

// String writes the setting in duration notation.
func (t Timeout) String() string { return Seconds(t).String() }

// Seconds converts a setting in seconds to a duration.
func Seconds[T ~float64](s T) time.Duration { return time.Duration(float64(s) * float64(time.Second)) }
