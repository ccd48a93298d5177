//go:build unix

// Package cputime reads the CPU time this process has used. Benchmarks report it beside wall time
// because the machines they run on are shared: wall time per operation swings with the neighbours'
// load, CPU time much less.
package cputime

import (
	"syscall"
	"time"
)

// Used is the process's user+system CPU time so far, 0 where it cannot be read.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
