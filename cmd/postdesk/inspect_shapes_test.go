package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// inspect --text says which layout and language a forward was recognised
// in, one fixture of each shape of issue 12 (the fixtures are mailmsg's).
func TestInspectSaysShapeAndLanguage(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	dir := filepath.Join("..", "..", "internal", "mailmsg", "testdata", "forward")
	for _, tc := range []struct{ file, source, client, shape, lang, from string }{
		{"outlookmac_da_wrote.eml", "inline-html", "outlook-mac", "wrote-line", "da", "Mette Jensen <mette.jensen@kunde.example>"},
		{"yahoo_hu_oneline.eml", "inline-html", "yahoo", "one-line-block", "hu", "Kovács Éva <eva.kovacs@ugyfel.example>"},
		{"apple_uk_quoted.eml", "inline-html", "apple", "header-block", "uk", "Олена Шевченко <olena.shevchenko@client.example>"},
		{"gmail_tr_mixed.eml", "inline-html", "gmail", "mixed-labels", "tr", "Ayşe Yılmaz <ayse.yilmaz@musteri.example>"},
		{"hubspot_ja_fullwidth.eml", "inline-html", "gmail", "full-width-colons", "ja", "山田 太郎 <taro.yamada@kokyaku.example>"},
		{"outlookcom_en_mailto.eml", "inline-html", "outlook-web", "mailto-decorated", "en", "Ann Example <ann.example@customer.example>"},
		{"attached_en_rfc822.eml", "attached", "outlook", "attached", "(none: an attached message)", "Ann Example <ann.example@customer.example>"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			out, _, err := cli(t, vars, "", "inspect", "--text", "--agent", "paul.agent@postdesk.example", path)
			if err != nil {
				t.Fatalf("inspect: %v\n%s", err, out)
			}
			for _, want := range []string{
				"Forwarded original (" + tc.source + ", " + tc.client + "):",
				"  Shape:    " + tc.shape + "\n",
				"  Language: " + tc.lang + "\n",
				"  From:     " + tc.from + "\n",
				"a forward from agent paul.agent@postdesk.example", // (the fixtures are older than the recovery window)
			} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in\n%s", want, out)
				}
			}
			out, _, err = cli(t, vars, "", "inspect", "--agent", "paul.agent@postdesk.example", path)
			var rep struct {
				Original struct{ Shape, Language string }
			}
			if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Original.Shape != tc.shape {
				t.Errorf("JSON: %v %+v\n%s", err, rep, out)
			}
		})
	}
}
