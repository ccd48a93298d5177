package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"panther"
	"panther/crawl"
	"panther/sqlite"
)

// startLog records the crawls a Scheduler starts.
type startLog struct {
	mu    sync.Mutex
	calls []int64
	reqs  []CrawlRequest
	err   error
}

func (l *startLog) start(_ context.Context, sourceID int64, r CrawlRequest) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return "", l.err
	}
	l.calls = append(l.calls, sourceID)
	l.reqs = append(l.reqs, r)
	return "job-" + time.Now().Format("150405.000000"), nil
}

func (l *startLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func TestSchedulerSQLite(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "panther.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	src, err := store.AddSource(ctx, "https://docs.example.org/manual/")
	if err != nil {
		t.Fatal(err)
	}
	var log startLog
	open := func() *Scheduler {
		s, err := OpenScheduler(ctx, path, log.start, quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s1, s2 := open(), open()
	clock := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	s1.now = func() time.Time { return clock }
	s2.now = s1.now

	depth := 2
	sc, err := s1.SetSchedule(ctx, src.ID, " 0 3 * * * ", CrawlRequest{JobRequest: crawl.JobRequest{MaxDepth: &depth}})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 5, 2, 3, 0, 0, 0, time.UTC); !sc.NextRun.Equal(want) || sc.Spec != "0 3 * * *" {
		t.Errorf("schedule %+v, want next run %v", sc, want)
	}
	if _, err := s1.SetSchedule(ctx, 999, "@daily", CrawlRequest{}); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("unknown source: %v, want ErrNotFound", err)
	}
	if _, err := s1.SetSchedule(ctx, src.ID, "not a spec", CrawlRequest{}); !errors.Is(err, panther.ErrInvalid) {
		t.Errorf("bad spec: %v, want ErrInvalid", err)
	}

	// Not due yet: nothing starts; the next due time is reported.
	next, err := s1.RunDue(ctx)
	if err != nil || log.count() != 0 || !next.Equal(sc.NextRun) {
		t.Fatalf("before its time: next %v, err %v, %d starts", next, err, log.count())
	}
	// Due (and a day of due times missed, as after a machine was off): both schedulers look, many
	// times; the crawl starts once.
	clock = time.Date(2030, 5, 3, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for _, s := range []*Scheduler{s1, s2, s1, s2} {
		wg.Go(func() {
			for range 5 {
				if _, err := s.RunDue(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if log.count() != 1 || log.calls[0] != src.ID || log.reqs[0].MaxDepth == nil || *log.reqs[0].MaxDepth != 2 {
		t.Fatalf("starts %v %+v, want one start of source %d with its request", log.calls, log.reqs, src.ID)
	}
	// A restart finds the schedule as recorded: the next due time ahead, the last run noted.
	s3 := open()
	s3.now = s1.now
	all, err := s3.Schedules(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("schedules %+v, %v", all, err)
	}
	if got := all[0]; !got.NextRun.Equal(time.Date(2030, 5, 4, 3, 0, 0, 0, time.UTC)) || got.LastRunID == "" || !got.LastRun.Equal(clock) {
		t.Errorf("schedule after its run %+v", got)
	}
	if _, err := s3.RunDue(ctx); err != nil || log.count() != 1 {
		t.Errorf("a restarted scheduler ran it again: %d starts, %v", log.count(), err)
	}

	// A start that fails (a crawl of the source still running) is recorded, and the schedule moves on.
	log.err = errors.New("source 1 is already being crawled: conflict")
	clock = time.Date(2030, 5, 4, 3, 0, 0, 0, time.UTC)
	if _, err := s3.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ = s3.Schedules(ctx)
	if len(all) != 1 || all[0].LastError == "" || !all[0].NextRun.After(clock) {
		t.Errorf("schedule after a failed start %+v", all)
	}
	log.err = nil

	// Run wakes for a schedule set while it sleeps, and starts it when due.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var mu sync.Mutex
	now := time.Now()
	s4 := open()
	s4.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	go func() { done <- s4.Run(runCtx) }()
	if err := s4.RemoveSchedule(ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	if err := s4.RemoveSchedule(ctx, src.ID); !errors.Is(err, panther.ErrNotFound) {
		t.Errorf("removing a removed schedule: %v, want ErrNotFound", err)
	}
	if _, err := s4.SetSchedule(ctx, src.ID, "@hourly", CrawlRequest{}); err != nil {
		t.Fatal(err)
	}
	before := log.count()
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	s4.poke()
	deadline := time.Now().Add(10 * time.Second)
	for log.count() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if log.count() != before+1 {
		t.Errorf("Run started %d crawls for a due schedule, want 1", log.count()-before)
	}

	// Removing the source removes its schedule.
	if _, err := s4.SetSchedule(ctx, src.ID, "@daily", CrawlRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := store.RemoveSource(ctx, src.ID, false); err != nil {
		t.Fatal(err)
	}
	if all, err := s4.Schedules(ctx); err != nil || len(all) != 0 {
		t.Errorf("schedules after their source was removed: %+v, %v", all, err)
	}
}
