package notification

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// timeLayout writes a moment as the notices do.
const timeLayout = "2 Jan 2006, 15:04 MST"

// reminder is a reminder that came due for one mailbox.
type reminder struct {
	st oauth.Status
	// lead is the most urgent lead whose time has come; covered are the
	// longer ones that came due with it (recorded, never sent).
	lead    time.Duration
	covered []time.Duration
}

// dueReminder decides whether a reminder is due for st at now: only for an
// OAuth mailbox whose authorization runs out (expiring, not yet overdue)
// within one of leads. ok is false otherwise.
func dueReminder(st oauth.Status, now time.Time, leads []time.Duration) (reminder, bool) {
	if st.Kind != store.AuthOAuth || st.State != store.AuthExpiring || st.Overdue || st.Deadline.IsZero() || st.NotConnected {
		return reminder{}, false
	}
	left := st.Deadline.Sub(now)
	if left <= 0 {
		return reminder{}, false
	}
	sorted := slices.Clone(leads)
	slices.Sort(sorted)
	r := reminder{st: st}
	for _, l := range sorted {
		if left > l {
			continue
		}
		if r.lead == 0 {
			r.lead = l
		} else {
			r.covered = append(r.covered, l)
		}
	}
	return r, r.lead != 0
}

func leadDays(l time.Duration) int { return int(l.Round(time.Hour) / (24 * time.Hour)) }

// Remind emails the admins the reminders that came due (3 days and 1 day
// before an authorization's deadline, by default), each once, and reports
// how many it emailed.
func (m *Mailer) Remind(ctx context.Context) (int, error) {
	if m.opt.OAuth == nil {
		return 0, nil
	}
	statuses, err := m.opt.OAuth.Statuses(ctx)
	if err != nil {
		return 0, err
	}
	now := m.now()
	sent := 0
	var errs []error
	for _, st := range statuses {
		r, ok := dueReminder(st, now, m.opt.Reminders)
		if !ok {
			continue
		}
		done, err := m.db.HasReminder(ctx, st.MailboxID, st.Deadline, leadDays(r.lead))
		if err != nil || done {
			errs = append(errs, err)
			continue
		}
		var got store.NoticeEmail
		err = m.db.Write(ctx, func(tx *store.Tx) (err error) {
			got, err = m.remind(ctx, tx, r, now)
			return err
		})
		switch {
		case errors.Is(err, store.ErrTaken):
		case err != nil:
			errs = append(errs, fmt.Errorf("remind of mailbox %d: %w", st.MailboxID, err))
		case got.State == store.EmailQueued:
			sent++
			m.log.Info("reminder emailed to the admins", "mailbox_id", st.MailboxID, "lead_days", leadDays(r.lead),
				"sender_mailbox_id", got.MailboxID, "admins", got.Count)
		case got.State == store.EmailNoMailbox:
			m.log.Warn("reminder not emailed: no healthy mailbox can send it", "mailbox_id", st.MailboxID)
		}
	}
	return sent, errors.Join(errs...)
}

// remind records reminder r and queues its emails in tx; ErrTaken when it
// was recorded meanwhile.
func (m *Mailer) remind(ctx context.Context, tx *store.Tx, r reminder, now time.Time) (store.NoticeEmail, error) {
	st := r.st
	base := store.Reminder{MailboxID: st.MailboxID, DueAt: st.Deadline, CreatedAt: now}
	for _, l := range r.covered {
		c := base
		c.LeadDays, c.Email = leadDays(l), store.NoticeEmail{State: store.EmailCovered}
		if _, err := tx.AddReminder(ctx, c); err != nil {
			return store.NoticeEmail{}, err
		}
	}
	rec := base
	rec.LeadDays = leadDays(r.lead)
	write := func(d store.NoticeEmail) error {
		rec.Email = d
		added, err := tx.AddReminder(ctx, rec)
		if err == nil && !added {
			err = fmt.Errorf("reminder of mailbox %d: %w", st.MailboxID, store.ErrTaken)
		}
		return err
	}
	// The first warning said it already when it came within this lead.
	warn, err := tx.LatestNotice(ctx, st.MailboxID, string(store.AuthExpiring))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.NoticeEmail{}, err
	}
	if err == nil && !warn.CreatedAt.Before(st.Deadline.Add(-r.lead)) {
		d := store.NoticeEmail{State: store.EmailCovered}
		return d, write(d)
	}
	days := leadDays(r.lead)
	in := fmt.Sprintf("within %d days", days)
	if days == 1 {
		in = "within a day"
	}
	text := fmt.Sprintf("%s: the authorization runs out on %s (%s). Reauthenticate it in Admin → Emails before then to keep mail flowing.",
		st.Address, st.Deadline.UTC().Format(timeLayout), in)
	e := email{subject: fmt.Sprintf("Postdesk: %s must be reauthenticated %s", st.Address, in),
		items: []mailmsg.NoticeItem{{Text: text, URL: m.link("/admin/emails")}}}
	return m.toAdmins(ctx, tx, st.MailboxID, true, e, write)
}
