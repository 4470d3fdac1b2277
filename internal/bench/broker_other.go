//go:build !linux

package bench

import "time"

func brokerCPU(string) func() time.Duration { return nil }

func procCPU(int) func() time.Duration { return func() time.Duration { return 0 } }

func selfCPU() time.Duration { return 0 }

func cpuTicks() (total, steal int64) { return 0, 0 }
