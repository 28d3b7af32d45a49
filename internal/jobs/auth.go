package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/postdesk/postdesk/internal/oauth"
)

// RefreshTokensArgs refreshes every OAuth mailbox's tokens, even idle ones,
// so a refresh token never lapses through inactivity (Microsoft: 90 days
// unused), then re-evaluates their deadlines.
type RefreshTokensArgs struct{}

// Kind names the job.
func (RefreshTokensArgs) Kind() string { return "refresh_tokens" }

// RefreshTokensWorker works RefreshTokensArgs.
type RefreshTokensWorker struct {
	river.WorkerDefaults[RefreshTokensArgs]
	OAuth *oauth.Service
	// Every, when set, refreshes only the mailboxes due (oauth.RefreshDue):
	// run hourly, thousands of refreshes spread over the interval instead of
	// all at once. Zero refreshes every mailbox.
	Every time.Duration
}

// Work refreshes and evaluates every mailbox. One mailbox's failure is
// recorded on that mailbox and does not stop the others. A refresh the
// sync is making meanwhile (in this process or another) is shared, never
// repeated with the same refresh token; at shutdown the rest is left for
// the next run (the job runs at every start).
func (w *RefreshTokensWorker) Work(ctx context.Context, job *river.Job[RefreshTokensArgs]) error {
	var err error
	if w.Every > 0 {
		err = w.OAuth.RefreshDue(ctx, w.Every)
	} else {
		err = w.OAuth.RefreshAll(ctx)
	}
	_, evalErr := w.OAuth.EvaluateAll(ctx)
	return errors.Join(err, evalErr)
}

// EvaluateAuthArgs brings every mailbox's authorization state up to date
// with the clock (entering expiring, overdue, expired) and records notices.
type EvaluateAuthArgs struct{}

// Kind names the job.
func (EvaluateAuthArgs) Kind() string { return "evaluate_auth" }

// EvaluateAuthWorker works EvaluateAuthArgs.
type EvaluateAuthWorker struct {
	river.WorkerDefaults[EvaluateAuthArgs]
	OAuth *oauth.Service
}

// Work evaluates every mailbox.
func (w *EvaluateAuthWorker) Work(ctx context.Context, job *river.Job[EvaluateAuthArgs]) error {
	_, err := w.OAuth.EvaluateAll(ctx)
	return err
}

// Auth registers the authorization upkeep: an hourly refresh of the
// mailboxes due, each about every 6 to 12 hours (well inside any
// provider's inactivity window) at its own time so the refreshes spread
// over the interval, and an hourly evaluation of deadlines.
func Auth(o *oauth.Service) func(w *river.Workers) []*river.PeriodicJob {
	return func(w *river.Workers) []*river.PeriodicJob {
		river.AddWorker(w, &RefreshTokensWorker{OAuth: o, Every: RefreshEvery})
		river.AddWorker(w, &EvaluateAuthWorker{OAuth: o})
		return []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return RefreshTokensArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
				func() (river.JobArgs, *river.InsertOpts) { return EvaluateAuthArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}),
		}
	}
}

// RefreshEvery is the longest a connected mailbox goes without a refresh.
const RefreshEvery = 12 * time.Hour

// All combines registrations.
func All(regs ...func(w *river.Workers) []*river.PeriodicJob) func(w *river.Workers) []*river.PeriodicJob {
	return func(w *river.Workers) []*river.PeriodicJob {
		var out []*river.PeriodicJob
		for _, r := range regs {
			if r != nil {
				out = append(out, r(w)...)
			}
		}
		return out
	}
}
