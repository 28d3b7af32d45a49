package mailtest

import (
	"embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Hostile messages: ordinary-looking emails that once stopped a mailbox
// (issue 8). Small ones are hand-written files in testdata/hostile; big
// ones are generated here. Every one has its own Message-ID (or none), so
// each is stored once and a second pass is all duplicates.

//go:embed testdata/hostile/*.eml
var hostileFiles embed.FS

// HostileMessage is one email built to break parsing or storage.
type HostileMessage struct {
	Name string // file name; the order of names is the order of arrival
	Raw  []byte
}

// LongMessageID is the 6,000-byte Message-ID (without angle brackets) of
// the generated message 06, which message 07 replies to.
var LongMessageID = strings.Repeat("x", 5986) + "@long.example"

// LongOriginalID is the long Message-ID of the customer's original that
// message 17 forwards as an attachment and message 18 is.
var LongOriginalID = "orig-" + strings.Repeat("y", 5995) + "@customer.example"

// Hostile returns every hostile message, ordered by name: a normal email,
// the NUL variants (encoded subject, quoted-printable body, encoded From
// name; raw NUL and invalid UTF-8), a 6,000-byte Message-ID and a reply
// to it, a 3,000-address To line, a 2 MB header block, forwards cut off
// at several depths before their closing boundaries, Python's two
// disagreements, a forward whose original has a long Message-ID and that
// original arriving directly, and a normal email last.
func Hostile() []HostileMessage {
	var out []HostileMessage
	names, err := hostileFiles.ReadDir("testdata/hostile")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	for _, e := range names {
		b, err := hostileFiles.ReadFile(path.Join("testdata/hostile", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, HostileMessage{Name: e.Name(), Raw: b})
	}
	out = append(out,
		HostileMessage{"06_long_message_id.eml", longMessageID()},
		HostileMessage{"07_reply_to_long_message_id.eml", replyToLong()},
		HostileMessage{"08_to_3000_addresses.eml", manyAddresses(3000)},
		HostileMessage{"09_header_block_2mb.eml", bigHeader(2 << 20)},
		HostileMessage{"17_fwd_original_long_id.eml", forwardLongOriginal()},
		HostileMessage{"18_original_long_id_direct.eml", []byte(longOriginal())},
	)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WriteHostile writes Hostile's messages into dir and returns their paths,
// in order.
func WriteHostile(dir string) ([]string, error) {
	var paths []string
	for _, m := range Hostile() {
		p := filepath.Join(dir, m.Name)
		if err := os.WriteFile(p, m.Raw, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func header(from, subject, id string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: support@postdesk.example\r\nSubject: %s\r\nDate: Thu, 5 Nov 2026 09:10:00 +0000\r\n", from, subject)
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	return b.String()
}

func longMessageID() []byte {
	return []byte(header("Jan <jan@customer.example>", "A very long Message-ID", LongMessageID) + "Its id is 6,000 bytes.\r\n")
}

func replyToLong() []byte {
	return []byte(header("Jan <jan@customer.example>", "Re: something else", "reply-long@customer.example",
		"In-Reply-To: <"+LongMessageID+">", "References: <"+LongMessageID+">") + "This replies to the long id.\r\n")
}

func manyAddresses(n int) []byte {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("Person %d <person%d@many.example>", i, i)
	}
	h := header("Kim <kim@customer.example>", "Sent to 3,000 people", "many-to@customer.example",
		"Cc: "+strings.Join(addrs[:n/10], ",\r\n "))
	h = strings.Replace(h, "To: support@postdesk.example", "To: support@postdesk.example,\r\n "+strings.Join(addrs, ",\r\n "), 1)
	return []byte(h + "Hello everyone.\r\n")
}

func bigHeader(size int) []byte {
	var b strings.Builder
	b.WriteString("From: Lee <lee@customer.example>\r\nTo: support@postdesk.example\r\nSubject: A 2 MB header block\r\n")
	b.WriteString("Date: Thu, 5 Nov 2026 09:11:00 +0000\r\nMessage-ID: <big-header@customer.example>\r\n")
	// One long folded header, then many small ones.
	b.WriteString("X-Long: " + strings.Repeat("long value ", 30000) + "\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("f", 90))
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nThe body after a 2 MB header.\r\n")
	return []byte(b.String())
}

func longOriginal() string {
	return "From: Mia Customer <mia@customer.example>\r\nTo: support@postdesk.example\r\nSubject: Original with a long id\r\n" +
		"Date: Wed, 4 Nov 2026 16:00:00 +0000\r\nMessage-ID: <" + LongOriginalID + ">\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nThe scanner is broken.\r\n"
}

func forwardLongOriginal() []byte {
	return []byte("From: Paul Agent <paul.agent@postdesk.example>\r\nTo: support@postdesk.example\r\n" +
		"Subject: FW: Original with a long id\r\nDate: Thu, 5 Nov 2026 09:12:00 +0000\r\n" +
		"Message-ID: <fwd-long-orig@postdesk.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: text/plain\r\n\r\nFrom a customer, see attached.\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n" + longOriginal() + "\r\n--outer--\r\n")
}
