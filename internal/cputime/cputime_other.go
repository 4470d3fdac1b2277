//go:build !linux

package cputime

import "time"

func self() time.Duration { return 0 }

func process(int) func() time.Duration { return func() time.Duration { return 0 } }
