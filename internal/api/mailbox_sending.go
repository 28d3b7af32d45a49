package api

import (
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// sendingResponse is how a mailbox's replies go out.
type sendingResponse struct {
	Queued  int `json:"queued"` // waiting to be sent, or being sent
	Held    int `json:"held"`   // waiting for the mailbox to be reauthenticated
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"` // the worker stopped mid-send: see the ticket
	Sent    int `json:"sent"`
	// LastSentAt is when the server last accepted a reply.
	LastSentAt *time.Time `json:"last_sent_at"`
	// Problem is the newest mailbox-wide refusal (null: none).
	Problem *sendingProblemResponse `json:"problem"`
}

// sendingProblemResponse is a refusal that concerns every reply of the
// mailbox, with what to do.
type sendingProblemResponse struct {
	Kind   string    `json:"kind"`   // auth_disabled, auth_failed, send_as_denied, config
	Advice string    `json:"advice"` // what it means and what to do
	At     time.Time `json:"at"`
	// ServerSaid is the server's words (admins only; "" for agents).
	ServerSaid string `json:"server_said"`
	TicketID   int64  `json:"ticket_id"` // the refused reply's ticket (0: none)
	// Resolved: replies went out after it.
	Resolved bool `json:"resolved"`
}

// sendingResponse reads a mailbox's outbox summary for the user of r.
func (h *handler) sendingResponse(r *http.Request, mailboxID int64) (sendingResponse, error) {
	sum, err := h.db.OutboxSummary(r.Context(), mailboxID, desk.MailboxWideKinds)
	if err != nil {
		return sendingResponse{}, err
	}
	c := sum.Counts
	out := sendingResponse{Queued: c[store.DeliveryQueued] + c[store.DeliverySending], Held: c[store.DeliveryHeld], Failed: c[store.DeliveryFailed],
		Unknown: c[store.DeliveryUnknown], Sent: c[store.DeliverySent], LastSentAt: timeOrNil(sum.LastSentAt)}
	if p := sum.Problem; p != nil {
		out.Problem = &sendingProblemResponse{Kind: p.ErrorKind, Advice: desk.SendingAdvice(p.ErrorKind), At: utc(p.At), TicketID: p.TicketID,
			Resolved: sum.LastSentAt.After(p.At)}
		if currentUser(r).Role == store.RoleAdmin {
			out.Problem.ServerSaid = p.LastError
		}
	}
	return out, nil
}

// testMailboxResponse is a connection test's result, server by server.
// A failed test answers 422 with the first failure in "error" as well.
type testMailboxResponse struct {
	OK      bool                `json:"ok"`
	Error   string              `json:"error,omitempty"`
	Message string              `json:"message,omitempty"`
	Checks  []connectionCheckJS `json:"checks"`
}

// connectionCheckJS is one server's result (desk.ConnectionCheck).
type connectionCheckJS struct {
	Server  string `json:"server"` // IMAP, SMTP
	Addr    string `json:"addr"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	// Field is the setting to fix ("smtp_port", "password"; "" for none in particular).
	Field string `json:"field,omitempty"`
	// Step is where it failed: IMAP dns, tcp, tls, greeting, auth, folder;
	// SMTP connect, tls, auth.
	Step string `json:"step,omitempty"`
	// Kind is an SMTP failure's kind: auth_disabled, auth_failed, config,
	// temporary, throttled, permanent.
	Kind       string `json:"kind,omitempty"`
	ServerSaid string `json:"server_said,omitempty"`
}

// testMailbox tries a password mailbox's settings against its IMAP server,
// and its SMTP server when given, without saving anything
// (desk.Admin.TestConnection, as Admin -> Emails' Test connection): 200
// when every check passed, 422 with the failing step's sentence (and the
// server's words) when not.
func (h *handler) testMailbox(w http.ResponseWriter, r *http.Request) {
	var req mailboxRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	var spec desk.MailboxSpec
	req.applyTo(&spec)
	rep, err := h.admin.TestConnection(r.Context(), spec)
	h.writeTest(w, r, 0, rep, err)
}

// testSavedMailbox tries a saved mailbox's settings (with the changes the
// body gives, like PATCH) with its stored password or token, saving
// nothing (desk.Admin.TestMailbox).
func (h *handler) testSavedMailbox(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "mailboxID", "mailbox")
	if !ok {
		return
	}
	var req mailboxRequest
	if r.ContentLength != 0 && !decodeJSON(w, r, &req) {
		return
	}
	spec, err := h.admin.Spec(r.Context(), id)
	if err != nil {
		writeMailboxError(w, r, id, err)
		return
	}
	req.applyTo(&spec)
	rep, err := h.admin.TestMailbox(r.Context(), id, spec)
	h.writeTest(w, r, id, rep, err)
}

// writeTest answers a connection test.
func (h *handler) writeTest(w http.ResponseWriter, r *http.Request, id int64, rep desk.ConnectionReport, err error) {
	if err != nil && len(rep.Checks) == 0 {
		writeMailboxError(w, r, id, err)
		return
	}
	out := testMailboxResponse{OK: err == nil, Checks: []connectionCheckJS{}}
	for _, c := range rep.Checks {
		cj := connectionCheckJS{Server: c.Server, Addr: c.Addr, OK: c.OK, Message: c.Message, Field: c.Field}
		if ce := c.Cause; ce != nil {
			cj.Step, cj.ServerSaid = string(ce.Step), ce.ServerText
			if ce.Server == desk.ServerSMTP {
				cj.Step, cj.Kind = ce.SMTPStage, ce.SMTPKind.String()
			}
		}
		out.Checks = append(out.Checks, cj)
	}
	if err != nil {
		out.Error, _ = desk.Message(err)
		writeJSON(w, r, http.StatusUnprocessableEntity, out)
		return
	}
	out.Message = "every server accepted the sign-in (and the IMAP server has every folder); no email was sent"
	writeJSON(w, r, http.StatusOK, out)
}
