//go:build !linux

package bench

import "time"

func brokerCPU(string) func() time.Duration { return nil }

func cpuTicks() (total, steal int64) { return 0, 0 }
