package notification

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// noticeKind is how the admins are emailed about one kind of notice.
type noticeKind struct {
	subject string // with the mailbox's address for %s
	// fault: the mailbox cannot be trusted to send (never send through it);
	// otherwise it still works and may send about itself when no other can.
	fault bool
}

// noticeKinds are the notices emailed to the admins; any other kind
// ("restored", ...) is shown in the app only.
var noticeKinds = map[string]noticeKind{
	string(store.AuthExpiring):      {subject: "Postdesk: %s must be reauthenticated soon"},
	"overdue":                       {subject: "Postdesk: reauthentication of %s is overdue"},
	string(store.AuthNeedsReauth):   {subject: "Postdesk: %s needs reauthentication", fault: true},
	string(store.AuthProviderFault): {subject: "Postdesk: the provider refuses Postdesk's settings for %s", fault: true},
	store.NoticeQuarantined:         {subject: "Postdesk: an email to %s could not be stored"},
	"sync_skipped":                  {subject: "Postdesk: older messages of %s were not fetched"},
	"smtp_auth_disabled":            {subject: "Postdesk: replies cannot be sent from %s", fault: true},
	"smtp_send_as_denied":           {subject: "Postdesk: replies cannot be sent from %s", fault: true},
	"smtp_config":                   {subject: "Postdesk: replies cannot be sent from %s", fault: true},
}

// repeatWindow: a notice like one emailed this recently (still unread,
// nothing restored since) is not emailed again.
const repeatWindow = 24 * time.Hour

// EmailNotices emails every notice not yet emailed to every active admin,
// and reports how many notices it emailed.
func (m *Mailer) EmailNotices(ctx context.Context) (int, error) {
	notices, err := m.db.NoticesToEmail(ctx, 100)
	if err != nil {
		return 0, err
	}
	emailed := 0
	var errs []error
	for _, n := range notices {
		var got store.NoticeEmail
		err := m.db.Write(ctx, func(tx *store.Tx) (err error) {
			got, err = m.emailNotice(ctx, tx, n)
			return err
		})
		switch {
		case errors.Is(err, store.ErrTaken):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("email notice %d: %w", n.ID, err))
			continue
		}
		log := m.log.With("notice_id", n.ID, "mailbox_id", n.MailboxID, "kind", n.Kind)
		switch got.State {
		case store.EmailQueued:
			emailed++
			log.Info("notice emailed to the admins", "sender_mailbox_id", got.MailboxID, "admins", got.Count)
		case store.EmailNoMailbox:
			log.Warn("notice not emailed: no healthy mailbox can send it; shown in the app only")
		case store.EmailNoAdmin:
			log.Warn("notice not emailed: no active admin has an address to send to")
		}
	}
	return emailed, errors.Join(errs...)
}

// emailNotice decides what becomes of notice n's email and queues it, in
// tx: first the decision (which claims the notice), then the emails.
func (m *Mailer) emailNotice(ctx context.Context, tx *store.Tx, n store.Notice) (store.NoticeEmail, error) {
	nk, ok := noticeKinds[n.Kind]
	if !ok {
		return store.NoticeEmail{State: store.EmailNotEmailed}, tx.DecideNoticeEmail(ctx, n.ID, store.NoticeEmail{State: store.EmailNotEmailed})
	}
	repeat, err := tx.NoticeAlreadyEmailed(ctx, n, m.now().Add(-repeatWindow))
	if err != nil {
		return store.NoticeEmail{}, err
	}
	if repeat {
		return store.NoticeEmail{State: store.EmailRepeat}, tx.DecideNoticeEmail(ctx, n.ID, store.NoticeEmail{State: store.EmailRepeat})
	}
	address := "Postdesk"
	if n.MailboxID != 0 {
		mb, err := tx.Mailbox(ctx, n.MailboxID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.NoticeEmail{}, err
		}
		if mb.Address != "" {
			address = mb.Address
		}
	}
	e := email{subject: fmt.Sprintf(nk.subject, address),
		items: []mailmsg.NoticeItem{{Text: n.Message, URL: m.link("/admin/emails#notices")}}}
	return m.toAdmins(ctx, tx, n.MailboxID, !nk.fault, e, func(d store.NoticeEmail) error {
		return tx.DecideNoticeEmail(ctx, n.ID, d)
	})
}

// toAdmins sends e to every active admin through a healthy mailbox other
// than about (about itself only as a last resort, when allowed), after
// record has written the decision; with no admin or no healthy mailbox,
// record writes why and nothing is sent.
func (m *Mailer) toAdmins(ctx context.Context, tx *store.Tx, about int64, lastResort bool, e email, record func(store.NoticeEmail) error) (store.NoticeEmail, error) {
	admins, err := m.admins(ctx, tx)
	if err != nil {
		return store.NoticeEmail{}, err
	}
	if len(admins) == 0 {
		d := store.NoticeEmail{State: store.EmailNoAdmin}
		return d, record(d)
	}
	healthy, err := m.healthyMailboxes(ctx, tx)
	if err != nil {
		return store.NoticeEmail{}, err
	}
	mb, ok := pickSender(healthy, []int64{m.systemMailbox(healthy)}, about, lastResort)
	if !ok {
		d := store.NoticeEmail{State: store.EmailNoMailbox}
		return d, record(d)
	}
	d := store.NoticeEmail{State: store.EmailQueued, MailboxID: mb.ID, Count: len(admins)}
	if err := record(d); err != nil {
		return store.NoticeEmail{}, err
	}
	for _, a := range admins {
		ae := e
		ae.to = a
		ae.intro = "Hello " + displayName(a) + ","
		ae.outro = fmt.Sprintf("You get this email because you are an admin of Postdesk; it was sent through %s. "+
			"The notice stays in Admin → Emails until it is dismissed.", mb.Address)
		if err := m.queue(ctx, tx, mb, ae); err != nil {
			return store.NoticeEmail{}, err
		}
	}
	return d, nil
}

// admins are the active admins that can be emailed.
func (m *Mailer) admins(ctx context.Context, tx *store.Tx) ([]store.User, error) {
	users, err := tx.Users(ctx)
	if err != nil {
		return nil, err
	}
	support, err := supportAddresses(ctx, tx)
	if err != nil {
		return nil, err
	}
	var out []store.User
	for _, u := range users {
		if u.Role == store.RoleAdmin && reachable(u, support) {
			out = append(out, u)
		}
	}
	return out, nil
}
