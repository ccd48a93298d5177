package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestDebouncerRunsAtMostOncePerInterval(t *testing.T) {
	var runs atomic.Int32
	ran := make(chan struct{}, 10)
	d := newDebouncer(time.Hour, func(context.Context) { runs.Add(1); ran <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.run(ctx); close(done) }()

	// The first trigger runs at once: nothing ran in the last interval.
	d.trigger()
	<-ran
	// Triggers within the interval are folded into one later run, which an hour's interval
	// postpones past the end of the test.
	for range 10 {
		d.trigger()
	}
	cancel()
	<-done
	if n := runs.Load(); n != 1 {
		t.Errorf("%d runs, want 1: triggers within the interval must wait for it", n)
	}

	// With no interval every trigger that comes after a run gets a run of its own.
	d = newDebouncer(0, func(context.Context) { runs.Add(1); ran <- struct{}{} })
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go d.run(ctx)
	for range 3 {
		d.trigger()
		<-ran
	}
	if n := runs.Load(); n != 4 {
		t.Errorf("%d runs in all, want 4", n)
	}
}
