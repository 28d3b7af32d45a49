package mailmsg

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizeAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		" Bob@Example.COM ":         "bob@example.com",
		"<bob@example.com>":         "bob@example.com",
		"mailto:Bob@example.com":    "bob@example.com",
		"bob":                       "",
		"@example.com":              "",
		"bob@":                      "",
		"bob smith@example.com":     "",
		"bob@exa mple.com":          "",
		"bob@example..com":          "",
		"\"odd@local\"@example.com": "\"odd@local\"@example.com",
		"":                          "",
	} {
		if got := NormalizeAddress(in); got != want {
			t.Errorf("NormalizeAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddressFallbacks(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][]Address{
		"Bob <bob@x.example>": {{"Bob", "bob@x.example"}},
		"bob@x.example":       {{"", "bob@x.example"}},
		"John Q. Public <jqp@x.example>, ann@y.example": {{"John Q. Public", "jqp@x.example"}, {"", "ann@y.example"}},
		"Müller, Jürgen <jm@x.example>":                 {{"Müller, Jürgen", "jm@x.example"}},
		"bob@x.example (Bob Smith)":                     {{"Bob Smith", "bob@x.example"}},
		`"=?utf-8?Q?Andr=C3=A9?=" <a@x.example>`:        {{"André", "a@x.example"}},
		"undisclosed-recipients:;":                      nil,
		"Team: a@x.example, b@x.example;":               {{"", "a@x.example"}, {"", "b@x.example"}},
		"broken <<a@x.example>":                         {{"broken", "a@x.example"}},
		"M\xfcller <m@x.example>":                       {{"Müller", "m@x.example"}},
		`"=?utf-8?q?Jane=0D=0ABcc:_x?=" <j@x.example>`:  {{"Jane Bcc: x", "j@x.example"}},
		`=?utf-8?q?Jane=00Doe?= <j@x.example>`:          {{"JaneDoe", "j@x.example"}},
		`=?utf-8?q?Jane=09=0ADoe?= <j@x.example>`:       {{"Jane Doe", "j@x.example"}},
	} {
		p := &parser{msg: &Message{}}
		got := p.parseAddressList("To", in)
		if !slices.Equal(got, want) {
			t.Errorf("parseAddressList(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Tue, 14 May 2024 09:12:41 +0000":       "2024-05-14T09:12:41Z",
		"14 May 2024 09:12:41 +0200":            "2024-05-14T09:12:41+02:00",
		"Tue, 14 May 2024 09:12:41 +0000 (UTC)": "2024-05-14T09:12:41Z",
		"Tue, 14 May 2024 09:12:41 GMT+0200":    "2024-05-14T09:12:41+02:00",
		"Wed, 14 May 2024 09:12:41 +0000":       "2024-05-14T09:12:41Z", // wrong weekday
		"Tue, 14 May 24 09:12:41 +0000":         "2024-05-14T09:12:41Z",
		"2024-05-14T09:12:41+02:00":             "2024-05-14T09:12:41+02:00",
		"Tue May 14 09:12:41 2024":              "2024-05-14T09:12:41Z",
		"Tue, 14 May 2024 09.12.41 +0000":       "2024-05-14T09:12:41Z",
		"Tue,  14  May  2024  09:12:41  +02:00": "2024-05-14T09:12:41+02:00",
	} {
		got, ok := parseDate(in)
		if !ok || got.Format(time.RFC3339) != want {
			t.Errorf("parseDate(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "yesterday", "Tue, 14 May 1066 09:12:41 +0000"} {
		if got, ok := parseDate(in); ok {
			t.Errorf("parseDate(%q) = %v, want failure", in, got)
		}
	}
}

func TestSanitizeFilename(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, mt, want string }{
		{"report.pdf", "application/pdf", "report.pdf"},
		{"../../etc/passwd", "text/plain", "passwd"},
		{`C:\Users\bob\evil.exe`, "application/octet-stream", "evil.exe"},
		{"a\x00b\u202ecod.exe", "application/octet-stream", "abcod.exe"},
		{"...", "image/png", "attachment-3.png"},
		{"", "application/x-unknown", "attachment-3.bin"},
		{"what?.txt", "text/plain", "what_.txt"},
		{strings.Repeat("x", 300) + ".pdf", "application/pdf", strings.Repeat("x", 196) + ".pdf"},
	} {
		if got := sanitizeFilename(c.in, c.mt, 3); got != c.want {
			t.Errorf("sanitizeFilename(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
