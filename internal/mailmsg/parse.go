// Package mailmsg reads raw RFC 5322 / MIME messages into a Message:
// envelope fields, the best text and HTML bodies, attachments, and the
// signals a helpdesk needs to avoid mail loops (automatic replies, bounces,
// bulk mail); and, the other way, composes replies (ComposeReply, see
// compose.go for its invariants).
//
// Design and invariants:
//
//   - Parse never fails on content. Whatever could not be read cleanly
//     (unknown charset, broken MIME part, bad date, truncated body) becomes a
//     line in Message.Problems; Parse returns an error only when the reader
//     itself fails or the attachment callback does. A recover at the top
//     turns a bug into a Problem, and the fuzz tests hold that none happens.
//   - Memory is bounded by ParseOptions.MaxBodyBytes, not by the message:
//     bodies are capped, and attachments are streamed to a callback while
//     their size and SHA-256 are computed, never held whole.
//   - Leniency is layered: the standard parsers (go-message's textproto for
//     headers and multipart, net/mail for addresses and dates, mime for
//     media types and encoded-words) are tried first, and tolerant fallbacks
//     take over where real mail breaks them.
//   - The package is a leaf: it imports nothing of the application.
package mailmsg

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
)

// DefaultMaxBodyBytes is the cap on Message.Text and Message.HTML each.
const DefaultMaxBodyBytes = 4 << 20

const (
	maxDepth      = 32   // nesting of multiparts
	maxParts      = 5000 // MIME parts per message
	maxReferences = 200
)

// Attachment describes one non-body MIME part.
type Attachment struct {
	Filename    string // decoded (RFC 2231 / encoded-words), sanitized: no path separators, no control chars; "attachment-N" + extension from type if missing
	ContentType string // lowercased media type, e.g. "application/pdf"
	ContentID   string // without <>; set for inline parts referenced by cid:
	Inline      bool
	Size        int64  // decoded bytes
	SHA256      string // hex of decoded content
	// Part is the IMAP-style part number ("" for the whole body, "1.2"),
	// the key of the part's span in PartSpans.
	Part string
	body bodyPrint
}

// Message is what Parse could read of one message.
type Message struct {
	MessageID            string    // without angle brackets, trimmed; "" if none
	InReplyTo            []string  // message ids without brackets
	References           []string  // message ids without brackets, oldest first
	Subject              string    // decoded
	From                 []Address //
	Sender               *Address  //
	ReplyTo              []Address //
	To, Cc               []Address //
	Date                 time.Time // from Date header; fallbacks: lenient parse of broken dates, then the newest Received header date; zero if none
	DateSource           string    // "date", "received", ""
	Text                 string    // best text/plain body (UTF-8); if only HTML, a text rendering of the HTML
	HTML                 string    // best text/html body (UTF-8), NOT sanitized
	Attachments          []Attachment
	Auto                 AutoKind
	AutoReason           string // human readable, e.g. "Auto-Submitted: auto-replied"
	Bulk                 bool   // Precedence bulk/junk/list, List-Id, List-Unsubscribe
	BulkReason           string
	SuppressAutoResponse bool // X-Auto-Response-Suppress present (any value but empty), or Bulk, or Auto != ""
	// NullReturnPath: the delivering server recorded an empty envelope
	// sender (Return-Path: <>): mail from a mail system, which RFC 3834
	// section 2 says is never answered automatically.
	// AuthFailure is the check the receiving server's Authentication-Results
	// say the email failed ("dmarc=fail", "spf=softfail", "compauth=fail"),
	// "" when none failed or it wrote none: its From may be forged.
	AuthFailure    string
	NullReturnPath bool
	Problems       []string // what could not be read cleanly — never fatal
	// HeaderFields is how many fields the top-level header has, whatever
	// their names (0: no header at all, not an email).
	HeaderFields     int
	BouncedMessageID string // for bounces: Message-ID of the original from the message/rfc822 or text/rfc822-headers part, if found
	// BouncedRecipients are the recipients a bounce says were not
	// delivered to: from its message/delivery-status part (RFC 3464), else
	// from X-Failed-Recipients.
	BouncedRecipients []BouncedRecipient
	// mailer is the X-Mailer (else User-Agent) field: which client sent
	// it, for the forward finder.
	mailer string
}

// ParseOptions tunes Parse. The zero value is ready to use.
type ParseOptions struct {
	// Attachment, when set, receives each attachment's decoded content as a
	// stream (for writing to disk). Size and SHA256 are filled in after it
	// returns; content not read by then is discarded. An error it returns
	// stops parsing and is returned by Parse. When nil, content is read and
	// discarded (Size and SHA256 still computed).
	Attachment func(a *Attachment, content io.Reader) error
	// MaxBodyBytes caps Text and HTML each (default DefaultMaxBodyBytes);
	// the excess is dropped with a Problem.
	MaxBodyBytes int64
	// LookForForwards, when set, is asked by ParseForwards after parsing
	// whether to search the message for forwarded originals at all (the
	// search of twenty languages' header blocks is most of the parse's
	// cost for ordinary mail). Nil: always search.
	LookForForwards func(msg *Message) bool
	// ForwardedAttachment, when set, receives the decoded content of each
	// attachment of an attached original that ParseForwards reads (they
	// are inside the original's part, not parts of the message itself, so
	// a caller that keeps attachments by their part cannot serve them).
	ForwardedAttachment func(a *Attachment, content io.Reader) error
}

// Parse reads one raw RFC 5322 message. It never panics and returns an error
// only when r itself fails (I/O) or opts.Attachment does; malformed input
// yields a Message with whatever could be read plus Problems.
func Parse(r io.Reader, opts ParseOptions) (*Message, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	src := &sourceReader{r: r}
	p := &parser{opts: opts, msg: &Message{}}
	br, pooled := getReader(src, 32<<10)
	defer putReader(br, pooled)
	var h textproto.Header
	var body io.Reader
	p.safely(func() {
		h, body = readHeader(br, p.problem)
	})
	p.msg.HeaderFields = h.Len()
	p.safely(func() { p.envelope(h) })
	if body != nil {
		p.safely(func() { p.walk(h, body, 0, "", 0, "") })
		if !p.stop {
			// Read to the end, so a failure of r after the last part is seen.
			io.Copy(io.Discard, body)
		}
	}
	if src.err != nil {
		return nil, fmt.Errorf("read message: %w", src.err)
	}
	if p.cbErr != nil {
		return nil, p.cbErr
	}
	p.safely(func() { p.finish(h) })
	return p.msg, nil
}

// sourceReader remembers the first real I/O error of the caller's reader, so
// that parsing code can treat every error as "no more data" and Parse can
// still tell I/O failures from malformed content.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

type parser struct {
	opts       ParseOptions
	msg        *Message
	text, html bodySlot
	nAttach    int
	nParts     int
	altSeq     int
	reportType string
	origID     string // Message-ID of an enclosed original message
	bounced    []BouncedRecipient
	truncated  bool     // a part ended without its closing boundary
	tap        *bodyTap // of the part walk hands to attach, if an attachment
	cbErr      error
	stop       bool
}

func (p *parser) safely(f func()) {
	defer func() {
		if v := recover(); v != nil {
			p.problem(fmt.Sprintf("panic: %v", v))
		}
	}()
	f()
}

func (p *parser) problem(s string) {
	if len(p.msg.Problems) < 100 {
		p.msg.Problems = append(p.msg.Problems, s)
	}
}

func (p *parser) problemAt(path string) func(string) {
	return func(s string) { p.problem(partName(path) + ": " + s) }
}

func partName(path string) string {
	if path == "" {
		return "body"
	}
	return "part " + path
}

// envelope reads the RFC 5322 3.6 fields.
func (p *parser) envelope(h textproto.Header) {
	m := p.msg
	if v := h.Get("Message-Id"); v != "" {
		if ids := parseMsgIDs(v); len(ids) > 0 {
			m.MessageID = ids[0]
		} else {
			m.MessageID = cleanMsgID(v)
		}
	}
	m.InReplyTo = parseMsgIDs(h.Get("In-Reply-To"))
	m.References = parseMsgIDs(strings.Join(h.Values("References"), " "))
	if n := len(m.References); n > maxReferences {
		// Keep the thread root and the most recent ancestors.
		m.References = append(m.References[:1:1], m.References[n-maxReferences+1:]...)
		p.problem(fmt.Sprintf("References: %d ids, kept %d", n, maxReferences))
	}
	if m.mailer = h.Get("X-Mailer"); m.mailer == "" {
		m.mailer = h.Get("User-Agent")
	}
	m.Subject = p.headerText(h, "Subject")
	if s := stripBidiControls(m.Subject); s != m.Subject {
		p.problem("right-to-left override characters removed from the subject (they can make \"exe.pdf\" read \"fdp.exe\")")
		m.Subject = s
	}
	m.From = p.parseAddressList("From", h.Get("From"))
	if s := p.parseAddressList("Sender", h.Get("Sender")); len(s) > 0 {
		m.Sender = &s[0]
	}
	m.ReplyTo = p.parseAddressList("Reply-To", strings.Join(h.Values("Reply-To"), ", "))
	m.To = p.parseAddressList("To", strings.Join(h.Values("To"), ", "))
	m.Cc = p.parseAddressList("Cc", strings.Join(h.Values("Cc"), ", "))
	if v := h.Get("Date"); v != "" {
		if t, ok := parseDate(v); ok {
			m.Date, m.DateSource = t, "date"
		} else {
			p.problem("bad date " + quote(truncate(v, 80)))
		}
	}
	if m.Date.IsZero() {
		if t, ok := receivedDate(h); ok {
			m.Date, m.DateSource = t, "received"
		}
	}
}

// finish settles the bodies and the automatic-message signals.
func (p *parser) finish(h textproto.Header) {
	m := p.msg
	m.Text = p.text.String()
	m.HTML = p.html.String()
	if p.text.truncated || p.html.truncated {
		p.problem(fmt.Sprintf("body truncated at %d bytes", p.opts.MaxBodyBytes))
	}
	if strings.TrimSpace(m.Text) == "" && m.HTML != "" {
		m.Text = HTMLToText(m.HTML)
	}
	m.Auto, m.AutoReason = classifyAuto(h, m.Subject, m.From, p.reportType)
	if m.Auto == AutoBounce {
		m.BouncedMessageID = p.origID
		if m.BouncedMessageID == "" {
			m.BouncedMessageID = findMessageIDLine(m.Text)
		}
		m.BouncedRecipients = p.bounced
		if len(m.BouncedRecipients) == 0 {
			for _, a := range strings.Split(h.Get("X-Failed-Recipients"), ",") {
				if a = NormalizeAddress(strings.Trim(strings.TrimSpace(a), "<>")); a != "" {
					m.BouncedRecipients = append(m.BouncedRecipients, BouncedRecipient{Address: a})
				}
			}
		}
	}
	m.Bulk, m.BulkReason = classifyBulk(h)
	m.NullReturnPath = strings.TrimSpace(h.Get("Return-Path")) == "<>"
	m.AuthFailure = authFailure(h)
	m.SuppressAutoResponse = strings.TrimSpace(h.Get("X-Auto-Response-Suppress")) != "" || m.Bulk || m.Auto != AutoNone
}

// findMessageIDLine finds "Message-ID: <...>" in a bounce's text, for MTAs
// that quote the original headers in the body.
func findMessageIDLine(text string) string {
	for line := range strings.Lines(text) {
		l := strings.TrimLeft(line, " >\t")
		if len(l) > 11 && strings.EqualFold(l[:11], "message-id:") {
			if ids := parseMsgIDs(l[11:]); len(ids) > 0 {
				return ids[0]
			}
		}
	}
	return ""
}

// bodySlot accumulates one kind of body. Parts of the same
// multipart/alternative replace each other (the later is the richer, RFC
// 2046 5.1.4); other inline parts of the same type are appended, as Apple
// Mail and list footers split a body. A body of one part (most) is kept as
// the string its part made, not copied again.
type bodySlot struct {
	one       string          // the body while one part makes it
	b         strings.Builder // the body once parts are appended
	joined    bool            // b holds the body
	group     int
	set       bool
	truncated bool
}

func (s *bodySlot) add(text string, group int, limit int64) {
	if s.set && group != 0 && s.group == group {
		s.one, s.joined, s.truncated = "", false, false
		s.b.Reset()
	}
	cur := s.String()
	s.set, s.group = true, group
	if cur == "" {
		if int64(len(text)) > limit {
			// A copy: the cut string would hold on to the whole.
			text = strings.Clone(truncateBytes(text, int(max(limit, 0))))
			s.truncated = true
		}
		s.one, s.joined = text, false
		s.b.Reset()
		return
	}
	if !s.joined {
		s.b.WriteString(s.one)
		s.one, s.joined = "", true
	}
	if text != "" && !strings.HasSuffix(cur, "\n") {
		s.b.WriteString("\n")
	}
	room := limit - int64(s.b.Len())
	if int64(len(text)) > room {
		text = truncateBytes(text, int(max(room, 0)))
		s.truncated = true
	}
	s.b.WriteString(text)
}

func (s *bodySlot) String() string {
	if s.joined {
		return s.b.String()
	}
	return s.one
}

// truncateBytes cuts s to at most n bytes on a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
