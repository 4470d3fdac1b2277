// Package cputime reads the CPU time (user and system) processes have used,
// so that a benchmark can tell what a client cost from what the server it
// talks to cost.
package cputime

import "time"

// Self is the CPU time this process has used so far (0 where it cannot be
// read).
func Self() time.Duration { return self() }

// Process returns a reader of the CPU time process pid has used so far; it
// reads 0 once the process is gone (and on systems without /proc).
func Process(pid int) func() time.Duration { return process(pid) }
