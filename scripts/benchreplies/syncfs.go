package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// medianSyncfs times syncfs(2) of dir's file system, as blobs.Sync does
// once per reply: a figure to read the writing's cost against.
func medianSyncfs(dir string, n int) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ds := make([]time.Duration, 0, n)
	for range n {
		began := time.Now()
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return 0, fmt.Errorf("syncfs %s: %w", dir, err)
		}
		ds = append(ds, time.Since(began))
	}
	return percentile(ds, 50), nil
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
