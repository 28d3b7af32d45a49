package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// submitter hands one composed message to the mailbox's provider: over
// SMTP (session) or through Microsoft Graph (graphSubmitter), as the
// mailbox's send transport says. Either way the drain's rules hold: the
// attempt is recorded (ready) before the message can take effect, and a
// failure is an *smtpsend.Error whose Kind the drain's outcome decides on
// (or the oauth service's own refusal).
type submitter interface {
	send(ctx context.Context, item store.OutboxItem, raw []byte, ready func() error) error
	close()
}

// newSubmitter returns the mailbox's submitter for one drain.
func (s *Sender) newSubmitter(st *mailboxState) submitter {
	if st.srv.SendsWithGraph() {
		return &graphSubmitter{s: s, st: st}
	}
	return s.newSession(st)
}

// graphSubmitter sends the MIME Postdesk composed with Graph's sendMail,
// so Message-ID, In-Reply-To and References are ours; Graph files the
// copy in Sent Items itself (no IMAP copy). Graph strips Auto-Submitted
// (as reported, and as the stand-in does): loop protection relies on
// Message-ID matching instead (docs/graph.md).
type graphSubmitter struct {
	s  *Sender
	st *mailboxState
}

func (g *graphSubmitter) close() {}

// send records the attempt first (ready), then posts the message once. A
// POST whose outcome is unknown is never retried blindly (KindOutcomeUnknown).
func (g *graphSubmitter) send(ctx context.Context, item store.OutboxItem, raw []byte, ready func() error) error {
	ctx = context.WithoutCancel(ctx)
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	if err := ready(); err != nil {
		return err
	}
	return graphSendError(c.SendMIME(ctx, raw))
}

func (g *graphSubmitter) client(ctx context.Context) (*msgraph.Client, error) {
	if g.s.opt.OAuth == nil {
		return nil, &smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageAuth, Err: errors.New("no OAuth provider is configured")}
	}
	c, err := g.s.opt.OAuth.GraphClient(ctx, g.st.mb.ID)
	if errors.Is(err, oauth.ErrNoGraph) {
		return nil, &smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageConnect, Err: err,
			Message: "the mailbox's sign-in provider has no Microsoft Graph: send through SMTP instead"}
	}
	return c, err
}

// graphSendError maps a Graph refusal to the outbox's kinds: 401 after a
// refresh → auth_failed (held until reauthenticated); 429 → throttled and
// 503 → temporary (retried later, in order); a 403 → config (a permission
// or an access policy an admin fixes; retried); an invalid MIME or any
// other 4xx → permanent; a network error or 5xx during the POST →
// outcome unknown (it may have been sent). The oauth service's own
// refusals (needs_reauth, not connected) pass through unchanged.
func graphSendError(err error) error {
	var ge *msgraph.Error
	if err == nil || !errors.As(err, &ge) {
		return err
	}
	kind := smtpsend.KindPermanent
	switch ge.Kind {
	case msgraph.KindAuth:
		kind = smtpsend.KindAuthFailed
	case msgraph.KindThrottled:
		kind = smtpsend.KindThrottled
	case msgraph.KindUnavailable:
		kind = smtpsend.KindTemporary
	case msgraph.KindForbidden:
		kind = smtpsend.KindConfig
	case msgraph.KindTemporary:
		kind = smtpsend.KindOutcomeUnknown
	}
	return &smtpsend.Error{Kind: kind, Stage: smtpsend.StageData, Code: ge.Status,
		Message: "Microsoft Graph: " + ge.Explain(), Err: err}
}

// graphSentSearch bounds looking for a message in Sent Items.
const graphSentSearch = 2 * time.Minute

// graphSent reports whether Sent Items holds a message with messageID
// (Graph files what sendMail sent there).
func (s *Sender) graphSent(ctx context.Context, st *mailboxState, messageID string) (bool, error) {
	if s.opt.OAuth == nil {
		return false, errors.New("no OAuth provider is configured")
	}
	c, err := s.opt.OAuth.GraphClient(ctx, st.mb.ID)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, graphSentSearch)
	defer cancel()
	ids, err := c.FindMessage(ctx, "sentitems", "<"+messageID+">")
	if err != nil {
		return false, fmt.Errorf("search Sent Items: %w", err)
	}
	return len(ids) > 0, nil
}
