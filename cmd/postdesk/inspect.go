package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/mailmsg"
)

// inspectAddress is one address in inspect's output.
type inspectAddress struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

type inspectOriginal struct {
	From     inspectAddress   `json:"from"`
	To       []inspectAddress `json:"to"`
	Cc       []inspectAddress `json:"cc"`
	Subject  string           `json:"subject"`
	Date     *time.Time       `json:"date"`
	DateText string           `json:"date_text,omitempty"`
	Source   string           `json:"source"`
	Client   string           `json:"client"`
	Shape    string           `json:"shape"`
	Language string           `json:"language,omitempty"`
	Depth    int              `json:"depth"`
	Note     string           `json:"forwarder_note,omitempty"`
}

type inspectReport struct {
	File           string             `json:"file"`
	Mailbox        string             `json:"mailbox"`
	From           []inspectAddress   `json:"from"`
	To             []inspectAddress   `json:"to"`
	Cc             []inspectAddress   `json:"cc"`
	ReplyTo        []inspectAddress   `json:"reply_to"`
	Subject        string             `json:"subject"`
	Date           *time.Time         `json:"date"`
	MessageID      string             `json:"message_id"`
	InReplyTo      []string           `json:"in_reply_to"`
	References     []string           `json:"references"`
	BodyTextLength int                `json:"body_text_length"`
	HasHTML        bool               `json:"has_html"`
	Attachments    []inspectAttach    `json:"attachments"`
	Problems       []string           `json:"problems"`
	Classification string             `json:"classification"`
	Outcome        string             `json:"outcome"`
	TicketID       int64              `json:"ticket_id,omitempty"`
	Original       *inspectOriginal   `json:"original"`
	Forwards       []*inspectOriginal `json:"forwards"`
	Reasons        []string           `json:"reasons"`
}

type inspectAttach struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
}

func addrs(list []mailmsg.Address) []inspectAddress {
	out := []inspectAddress{}
	for _, a := range list {
		out = append(out, inspectAddress{Name: a.Name, Address: a.Address})
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func original(f *mailmsg.Forward) *inspectOriginal {
	if f == nil {
		return nil
	}
	return &inspectOriginal{From: inspectAddress{Name: f.From.Name, Address: f.From.Address}, To: addrs(f.To), Cc: addrs(f.Cc),
		Subject: f.Subject, Date: timePtr(f.Date), DateText: f.DateText, Source: f.Source, Client: f.Client,
		Shape: f.Shape, Language: f.Language, Depth: f.Depth, Note: f.Note}
}

func runInspect(ctx context.Context, e env, args []string) error {
	var mailbox *string
	var text *bool
	var agents listFlag
	var f *os.File
	a, fs, done, err := startNew(ctx, e, "inspect", args, func(fs *flag.FlagSet) {
		mailbox = fs.String("mailbox", "", "the support address the message arrived at (default: the mailbox among its recipients, else the only one)")
		fs.Var(&agents, "agent", "also treat this address as an agent's (repeatable)")
		text = fs.Bool("text", false, "print readable text instead of JSON")
	}, func(fs *flag.FlagSet) error {
		if fs.NArg() != 1 {
			return fmt.Errorf("inspect: name one FILE.eml, not %d (see postdesk inspect --help)", fs.NArg())
		}
		var err error
		if f, err = os.Open(fs.Arg(0)); err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		return nil
	})
	if f != nil {
		defer f.Close()
	}
	if done {
		return err
	}
	defer a.close()
	cfg := a.cfg
	address := *mailbox
	if address == "" {
		if address, err = guessMailbox(ctx, a, f); err != nil {
			return err
		}
	}
	in := ingest.New(a.db, ingest.Options{SupportAddresses: cfg.SupportAddresses, Agents: agents})
	p, d, err := in.Inspect(ctx, address, f)
	if err != nil {
		return err
	}
	m := p.Msg
	rep := inspectReport{File: fs.Arg(0), Mailbox: strings.ToLower(address), From: addrs(m.From), To: addrs(m.To), Cc: addrs(m.Cc),
		ReplyTo: addrs(m.ReplyTo), Subject: m.Subject, Date: timePtr(m.Date), MessageID: m.MessageID,
		InReplyTo: append([]string{}, m.InReplyTo...), References: append([]string{}, m.References...),
		BodyTextLength: len(m.Text), HasHTML: m.HTML != "", Attachments: []inspectAttach{}, Problems: append([]string{}, m.Problems...),
		Classification: d.Class, Outcome: string(d.Outcome), Original: original(d.Original), Forwards: []*inspectOriginal{},
		Reasons: d.Reasons, TicketID: d.TicketID} // the ticket joined, attached to or already holding it; none for a new one
	for _, a := range m.Attachments {
		rep.Attachments = append(rep.Attachments, inspectAttach{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, Inline: a.Inline})
	}
	for i := range p.Forwards {
		rep.Forwards = append(rep.Forwards, original(&p.Forwards[i]))
	}
	if rep.Original == nil && len(p.Forwards) > 0 {
		rep.Original = original(&p.Forwards[0])
	}
	if *text {
		return printInspect(e.stdout, rep)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

func printInspect(w io.Writer, r inspectReport) error {
	show := func(list []inspectAddress) string {
		var s []string
		for _, a := range list {
			if a.Name != "" {
				s = append(s, fmt.Sprintf("%s <%s>", a.Name, a.Address))
			} else {
				s = append(s, a.Address)
			}
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "%s → %s\n\n", r.File, r.Mailbox)
	fmt.Fprintf(w, "From:        %s\nTo:          %s\n", show(r.From), show(r.To))
	if len(r.Cc) > 0 {
		fmt.Fprintf(w, "Cc:          %s\n", show(r.Cc))
	}
	if len(r.ReplyTo) > 0 {
		fmt.Fprintf(w, "Reply-To:    %s\n", show(r.ReplyTo))
	}
	fmt.Fprintf(w, "Subject:     %s\n", r.Subject)
	if r.Date != nil {
		fmt.Fprintf(w, "Date:        %s\n", r.Date.Format(time.RFC1123Z))
	} else {
		fmt.Fprintf(w, "Date:        (unknown)\n")
	}
	fmt.Fprintf(w, "Message-ID:  %s\n", r.MessageID)
	if len(r.InReplyTo)+len(r.References) > 0 {
		fmt.Fprintf(w, "In reply to: %s\nReferences:  %s\n", strings.Join(r.InReplyTo, " "), strings.Join(r.References, " "))
	}
	fmt.Fprintf(w, "Body:        %d characters of text", r.BodyTextLength)
	if r.HasHTML {
		fmt.Fprint(w, ", and HTML")
	}
	fmt.Fprintln(w)
	for _, a := range r.Attachments {
		fmt.Fprintf(w, "Attachment:  %s (%s, %d bytes)\n", a.Filename, a.ContentType, a.Size)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "Problem:     %s\n", p)
	}
	if o := r.Original; o != nil {
		lang := o.Language
		if lang == "" {
			lang = "(none: an attached message)"
		}
		fmt.Fprintf(w, "\nForwarded original (%s, %s):\n  Shape:    %s\n  Language: %s\n  From:     %s\n  Subject:  %s\n",
			o.Source, o.Client, o.Shape, lang, show([]inspectAddress{o.From}), o.Subject)
		if o.Date != nil {
			fmt.Fprintf(w, "  Date:     %s\n", o.Date.Format(time.RFC1123Z))
		} else {
			fmt.Fprintf(w, "  Date:     (unreadable: %q)\n", o.DateText)
		}
	}
	fmt.Fprintf(w, "\nClassification: %s\n", r.Classification)
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
	return nil
}

// guessMailbox is the mailbox an email arrived at when --mailbox is not
// given: the one of its To, Cc or Delivered-To addresses that is a
// mailbox, else the only mailbox, else support@example.com when there is
// none yet; several candidates are refused, naming them. f is read from
// the start again afterwards.
func guessMailbox(ctx context.Context, a *app, f *os.File) (string, error) {
	mbs, err := a.db.Mailboxes(ctx)
	if err != nil {
		return "", err
	}
	var live []string
	for _, mb := range mbs {
		if !mb.Removed() {
			live = append(live, mb.Address)
		}
	}
	var found []string
	if msg, err := mail.ReadMessage(bufio.NewReader(f)); err == nil {
		for _, field := range []string{"To", "Cc", "Delivered-To", "X-Original-To"} {
			list, _ := msg.Header.AddressList(field)
			for _, to := range list {
				if addr := strings.ToLower(to.Address); slices.Contains(live, addr) && !slices.Contains(found, addr) {
					found = append(found, addr)
				}
			}
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("inspect: %w", err)
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return "", fmt.Errorf("inspect: the email is addressed to %d mailboxes (%s): say which one it arrived at with --mailbox", len(found), strings.Join(found, ", "))
	case len(live) == 1:
		return live[0], nil
	case len(live) == 0:
		return "support@example.com", nil
	}
	return "", fmt.Errorf("inspect: none of the email's recipients is a mailbox: say which one it arrived at with --mailbox (one of: %s)", strings.Join(live, ", "))
}
