package fakeidp

// pageTemplates are the IdP's pages: one stylesheet inline, no scripts and no
// external assets.
const pageTemplates = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} – Fake Microsoft sign-in</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1b1b;background:#eef1f5}
main{max-width:440px;margin:6vh auto;background:#fff;padding:32px 40px;box-shadow:0 2px 8px rgba(0,0,0,.12)}
.brand{font-weight:600;color:#5e5e5e;font-size:14px;display:flex;gap:8px;align-items:center}
.brand i{display:inline-grid;grid-template-columns:9px 9px;gap:2px}
.brand b{width:9px;height:9px}
h1{font-size:22px;font-weight:600;margin:16px 0 4px}
p.sub{margin:0 0 16px;color:#555}
.banner{background:#fff4ce;border-left:4px solid #c19c00;padding:8px 12px;font-size:13px;margin:0 0 16px}
.error{background:#fde7e9;border-left:4px solid #a4262c;padding:8px 12px;margin:0 0 16px}
ul.accounts{list-style:none;padding:0;margin:0 0 16px}
ul.accounts button{width:100%;text-align:left;background:#fff;border:1px solid #ddd;padding:10px 12px;margin:0 0 6px;cursor:pointer;font:inherit}
ul.accounts button:hover,ul.accounts button.hinted{border-color:#0067b8;background:#f3f8fd}
ul.accounts small{display:block;color:#555}
label{display:block;font-size:13px;margin:10px 0 2px}
input[type=email],input[type=password]{width:100%;padding:8px 4px;border:0;border-bottom:1px solid #666;font:inherit}
.actions{display:flex;gap:8px;justify-content:flex-end;margin-top:20px}
.actions button{min-width:108px;padding:7px 12px;font:inherit;border:0;cursor:pointer}
.primary{background:#0067b8;color:#fff}
.secondary{background:#ccc;color:#1b1b1b}
:focus-visible{outline:2px solid #1b1b1b;outline-offset:2px}
code{font-size:12px;word-break:break-all}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{text-align:left;padding:4px;border-bottom:1px solid #eee;vertical-align:top}
</style></head><body><main>
<div class="brand"><i aria-hidden="true"><b style="background:#f25022"></b><b style="background:#7fba00"></b><b style="background:#00a4ef"></b><b style="background:#ffb900"></b></i> Fake Microsoft</div>
{{end}}

{{define "foot"}}</main></body></html>{{end}}

{{define "signin"}}{{template "head" "Sign in"}}
<h1>Sign in</h1>
<p class="sub">to continue to <strong>{{.AppName}}</strong></p>
<p class="banner">This is Postdesk's stand-in identity provider, not Microsoft. Pick an account, or type an account's address and password.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}
{{if .Accounts}}<ul class="accounts" aria-label="Accounts">
{{range .Accounts}}<li><button type="submit" name="account" value="{{.Address}}" formnovalidate{{if .Hinted}} class="hinted"{{end}}>{{if .Name}}{{.Name}}{{else}}{{.Address}}{{end}}<small>{{.Address}}{{if .HasPassword}} · has a password{{end}}</small></button></li>
{{end}}</ul>
{{else}}<p class="error">No accounts are configured. Add some with fakeidp Options.Accounts.</p>{{end}}
<label for="email">Email address</label>
<input type="email" id="email" name="email" value="{{.Email}}" autocomplete="username" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions">
<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Cancel</button>
<button type="submit" name="action" value="password" class="primary">Sign in</button>
</div>
</form>
{{template "foot"}}{{end}}

{{define "consent"}}{{template "head" "Permissions requested"}}
<h1>Permissions requested</h1>
<p class="sub"><strong>{{.AppName}}</strong> wants to use your account <strong>{{.Account}}</strong> to:</p>
<ul>{{range .Scopes}}<li>{{scopeLabel .}}</li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="ticket" value="{{.Ticket}}">
<div class="actions">
<button type="submit" name="action" value="decline" class="secondary">Cancel</button>
<button type="submit" name="action" value="accept" class="primary">Accept</button>
</div>
</form>
{{template "foot"}}{{end}}

{{define "error"}}{{template "head" "Sign-in error"}}
<h1>Sorry, but we're having trouble signing you in.</h1>
<p class="error" role="alert">AADSTS{{.Code}}: {{.Description}}</p>
<table>
<tr><th>Error</th><td><code>{{.Error}}</code></td></tr>
<tr><th>Trace ID</th><td><code>{{.TraceID}}</code></td></tr>
<tr><th>Timestamp</th><td>{{.Timestamp}}</td></tr>
</table>
<p>The application's sign-in request is wrong; fix its configuration (client ID, redirect URI) and try again.</p>
{{template "foot"}}{{end}}

{{define "index"}}{{template "head" "Fake identity provider"}}
<h1>Fake identity provider</h1>
<p class="sub">Tenant <code>{{.Tenant}}</code>. Authority: <code>{{.Base}}/{{.Tenant}}/v2.0</code></p>
<h2>Accounts</h2>
{{if .Accounts}}<table>{{range .Accounts}}<tr><td>{{.Address}}</td><td>{{.Name}}</td><td>{{if .HasPassword}}password{{else}}pick only{{end}}</td></tr>{{end}}</table>{{else}}<p>None.</p>{{end}}
<h2>Apps</h2>
{{if .Apps}}<table>{{range .Apps}}<tr><td><code>{{.ClientID}}</code></td><td>{{.Name}}</td><td>{{range .RedirectURIs}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}</table>{{else}}<p>None.</p>{{end}}
{{template "foot"}}{{end}}
`
