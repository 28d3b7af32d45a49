package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/postdesk/postdesk/internal/jobs"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type echoArgs struct {
	N    int           `json:"n"`
	Wait time.Duration `json:"wait"`
}

func (echoArgs) Kind() string { return "test_echo" }

type echoWorker struct {
	river.WorkerDefaults[echoArgs]
	ran chan int
}

func (w *echoWorker) Work(ctx context.Context, job *river.Job[echoArgs]) error {
	if job.Args.Wait > 0 {
		select {
		case <-time.After(job.Args.Wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.ran <- job.Args.N
	return nil
}

func start(t *testing.T, db *store.DB) (*jobs.Runner, chan int) {
	t.Helper()
	return startPolling(t, db, 100*time.Millisecond)
}

func startPolling(t *testing.T, db *store.DB, poll time.Duration) (*jobs.Runner, chan int) {
	t.Helper()
	ctx := context.Background()
	if err := jobs.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	ran := make(chan int, 10)
	r, err := jobs.New(db, jobs.Options{PollInterval: poll, Register: func(w *river.Workers) []*river.PeriodicJob {
		river.AddWorker(w, &echoWorker{ran: ran})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r, ran
}

// A job inserted in a transaction runs only if the transaction commits.
func TestJobCommitsWithItsTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, ran := start(t, db)
		defer r.Stop(context.Background())
		ctx := context.Background()
		rollback := errors.New("rollback")
		err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateMailbox(ctx, "a@example.com", ""); err != nil {
				return err
			}
			if err := r.InsertTx(ctx, tx, echoArgs{N: 1}, nil); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error { return r.InsertTx(ctx, tx, echoArgs{N: 2}, nil) })
		if err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-ran:
			if n != 2 {
				t.Fatalf("ran job %d, want only the committed job 2", n)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("committed job did not run")
		}
		select {
		case n := <-ran:
			t.Fatalf("rolled-back job %d ran", n)
		case <-time.After(500 * time.Millisecond):
		}
	})
}

// A job inserted with InsertTxSoon starts once its transaction commits,
// not at the next poll (an hour away here); one inserted with InsertTx
// waits for the poll.
func TestInsertTxSoonStartsWithoutWaitingForThePoll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, ran := startPolling(t, db, time.Hour)
		defer r.Stop(context.Background())
		ctx := context.Background()
		time.Sleep(time.Second) // past the first fetch at start
		if err := db.Write(ctx, func(tx *store.Tx) error { return r.InsertTx(ctx, tx, echoArgs{N: 1}, nil) }); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-ran:
			t.Fatalf("job %d, inserted with InsertTx, ran before the poll", n)
		case <-time.After(2 * time.Second):
		}
		for n := 2; n <= 3; n++ { // the second finds the first's nudge done
			if err := db.Write(ctx, func(tx *store.Tx) error { return r.InsertTxSoon(ctx, tx, echoArgs{N: n}, nil) }); err != nil {
				t.Fatal(err)
			}
			got := map[int]bool{}
			deadline := time.After(30 * time.Second)
			for !got[n] {
				select {
				case m := <-ran:
					got[m] = true
				case <-deadline:
					t.Fatalf("job %d, inserted with InsertTxSoon, did not start before the poll", n)
				}
			}
		}
	})
}

// Stop hands a job that outlives the shutdown deadline back to the queue.
func TestStopHandsBackRunningJobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r, _ := start(t, db)
		ctx := context.Background()
		var jobID int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			res, err := r.Client().InsertTx(ctx, tx.SQLTx(), echoArgs{N: 3, Wait: time.Hour}, nil)
			if err == nil {
				jobID = res.Job.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, err := r.Client().JobGet(ctx, jobID)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == rivertype.JobStateRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job never started: %s", j.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
		stopCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := r.Stop(stopCtx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		j, err := r.Client().JobGet(ctx, jobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != rivertype.JobStateRetryable && j.State != rivertype.JobStateAvailable {
			t.Fatalf("after shutdown the job is %s, want retryable (handed back)", j.State)
		}
	})
}

// Several serve processes starting at once on a new PostgreSQL database
// all migrate the job engine: each succeeds (without a lock, River's
// migrations raced and one process exited on a duplicate key).
func TestJobEngineMigratesConcurrently(t *testing.T) {
	for round := range 3 {
		url := storetest.NewPostgresDatabase(t)
		var dbs []*store.DB
		for range 4 {
			db, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir(), DatabaseURL: url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs = append(dbs, db)
		}
		start := make(chan struct{})
		errs := make(chan error, len(dbs))
		for _, db := range dbs {
			go func() { <-start; errs <- jobs.Migrate(context.Background(), db, nil) }()
		}
		close(start)
		for range dbs {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}
