package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/store"
)

// ErrNoGraph is a mailbox whose provider has no Microsoft Graph.
var ErrNoGraph = errors.New("oauth: the mailbox's provider has no Microsoft Graph")

// graphKey names one mailbox's Graph client: a change of the signed-in
// account (a delegate for a shared mailbox) or of the endpoint makes a new one.
type graphKey struct {
	mailboxID  int64
	base, user string
}

// GraphClient returns the mailbox's Microsoft Graph client: one per
// mailbox in this process, shared by fetching and sending, so its limit of
// requests in flight (msgraph.DefaultMaxInFlight) holds for the mailbox.
// Its token is the mailbox's Graph access token (GraphTokenFunc), sent
// only to the provider's Graph endpoint. A shared mailbox signed in by a
// delegate is addressed by its address, any other as "me".
func (s *Service) GraphClient(ctx context.Context, mailboxID int64) (*msgraph.Client, error) {
	a, err := s.db.MailboxAuth(ctx, mailboxID)
	if err != nil {
		return nil, s.readErr(mailboxID, err)
	}
	if a.Kind != store.AuthOAuth {
		return nil, fmt.Errorf("mailbox %d: %w", mailboxID, ErrNotConnected)
	}
	p, err := s.providerFor(a.Provider)
	if err != nil {
		return nil, err
	}
	if !SupportsGraph(p) {
		return nil, fmt.Errorf("mailbox %d (%s): %w", mailboxID, p.Name, ErrNoGraph)
	}
	user := "me"
	if a.Account != "" && !strings.EqualFold(a.Account, a.Address) {
		user = a.Address
	}
	key := graphKey{mailboxID: mailboxID, base: strings.TrimSuffix(p.GraphURL, "/"), user: user}
	s.graphMu.Lock()
	defer s.graphMu.Unlock()
	if c, ok := s.graph[key]; ok {
		return c, nil
	}
	c := &msgraph.Client{BaseURL: key.base, HTTP: s.cfg.GraphHTTP, Token: s.GraphTokenFunc(mailboxID), User: user,
		Logger: s.log.With("mailbox_id", mailboxID)}
	if s.cfg.GraphTune != nil {
		s.cfg.GraphTune(c)
	}
	for k := range s.graph {
		if k.mailboxID == mailboxID {
			delete(s.graph, k) // superseded (its in-flight calls finish on their own)
		}
	}
	s.graph[key] = c
	return c, nil
}
