package mailmsg

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// replyPrefix matches one reply prefix in the languages our customers
// write in: Re, Aw (German), SV (Nordic), Antw (Dutch), with an
// optional counter ("Re[2]:", "Re(2):") and the full-width colon.
var replyPrefix = regexp.MustCompile(`(?i)^\s*(re|aw|sv|antw)\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*`)

// ReplySubject is the subject of a reply on ticket id: "Re: <subject>
// [#<id>]". Reply prefixes already present ("Re:", "RE:", "Aw:", "SV:",
// "Antw:", repeated) are removed so that a thread never reads "Re: Re:", the
// tag is not repeated when subject already carries it, and control
// characters become spaces. An empty subject gives "Re: [#<id>]".
func ReplySubject(subject string, ticketID int64) string {
	s := oneLine(subject)
	for {
		loc := replyPrefix.FindStringIndex(s)
		if loc == nil {
			break
		}
		s = s[loc[1]:]
	}
	tag := "[#" + strconv.FormatInt(ticketID, 10) + "]"
	if strings.Contains(s, tag) {
		tag = ""
	}
	s = truncateBytes(strings.TrimSpace(s), maxSubjectBytes)
	return strings.Join(strings.Fields("Re: "+s+" "+tag), " ")
}

// oneLine makes free text safe for a header: invalid UTF-8 and control
// characters (CR, LF, NUL, ...) and format characters such as bidi
// overrides become spaces, and runs of spaces one.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewMessageID returns a fresh message id without angle brackets,
// "pd.<time>.<random>@<domain>" (RFC 5322 3.6.4: unique by a timestamp and
// 80 random bits). domain may also be the mailbox's whole address: the part
// after the last "@" is used. A domain that cannot be written in an id
// becomes "postdesk.invalid".
func NewMessageID(domain string) string {
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return "pd." + strconv.FormatInt(time.Now().UnixMilli(), 36) + "." + idEncoding.EncodeToString(b[:]) + "@" + messageIDDomain(domain)
}

// KeyedMessageID is a Message-ID made from seed rather than at random:
// the same seed gives the same ID, so a message sent twice by mistake (a
// form submitted twice) is the same message, which the store keeps once.
// The seed is hashed; it appears nowhere in the ID.
func KeyedMessageID(domain, seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "pd.k." + idEncoding.EncodeToString(sum[:15]) + "@" + messageIDDomain(domain)
}

// messageIDDomain is the right side of a Message-ID for a mailbox's
// address or domain (postdesk.invalid if it cannot be one).
func messageIDDomain(domain string) string {
	if i := strings.LastIndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	if !strictMsgID("x@" + domain) {
		domain = "postdesk.invalid"
	}
	return domain
}

// renderReply writes the text and HTML bodies of r: the agent's text, the
// signature, then the quoted conversation.
func renderReply(r Reply) (text, htm string) {
	var t, h strings.Builder
	body := bodyText(r.Text)
	t.WriteString(body)
	h.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>` + "\n")
	h.WriteString(`<div dir="auto">` + "\n" + paragraphs(body) + "</div>\n")
	if sig := strings.TrimRight(bodyText(r.Signature), "\n"); sig != "" {
		// RFC 3676 4.3: the separator line is "-- " and the signature follows.
		t.WriteString("\n\n-- \n" + sig)
		h.WriteString(`<div class="signature">-- <br>` + "\n" + lines(sig) + "</div>\n")
	}
	for _, q := range r.Quotes {
		intro := quoteIntro(q)
		qt := strings.TrimRight(bodyText(q.Text), "\n")
		t.WriteString("\n\n" + intro + "\n" + strings.TrimSuffix(quoteLines(qt), "\n"))
		h.WriteString("<p>" + html.EscapeString(intro) + "</p>\n")
		h.WriteString(`<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex">` + "\n" +
			paragraphs(qt) + "</blockquote>\n")
	}
	t.WriteString("\n")
	h.WriteString("</body></html>\n")
	return t.String(), h.String()
}

// bodyText normalises line ends to LF (the writer makes them CRLF), makes
// the text valid UTF-8 and drops control characters other than tab and
// newline; trailing blank lines go.
func bodyText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return strings.TrimRight(s, " \t\n")
}

// quoteIntro is the attribution line above a quoted message.
func quoteIntro(q Quote) string {
	from := oneLine(q.From)
	if from == "" {
		from = "someone"
	}
	if q.Date.IsZero() {
		return from + " wrote:"
	}
	return "On " + q.Date.Format("Mon, 2 Jan 2006 at 15:04") + ", " + from + " wrote:"
}

// quoteLines prefixes every line with "> " (">" for an empty line, as
// RFC 3676 4.5 writes nested quotes without space stuffing).
func quoteLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, ">") {
			b.WriteString(">" + line + "\n")
		} else {
			b.WriteString("> " + line + "\n")
		}
	}
	return b.String()
}

// paragraphs renders plain text as escaped HTML: blank lines separate <p>
// elements, single newlines become <br>.
func paragraphs(s string) string {
	var b strings.Builder
	for _, p := range strings.Split(s, "\n\n") {
		p = strings.Trim(p, "\n")
		if p == "" {
			continue
		}
		b.WriteString("<p>" + lines(p) + "</p>\n")
	}
	return b.String()
}

// lines escapes s and turns newlines into <br>.
func lines(s string) string {
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br>\n")
}
