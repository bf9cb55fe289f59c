package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Limits of the token and session tables: each entry is a few dozen
// bytes, and nobody needs more pages open at once than this; the oldest
// goes first.
const (
	tokenTTL    = 10 * time.Minute // a printed URL is for opening now
	sessionTTL  = 12 * time.Hour   // a working day; then tend web again
	maxTokens   = 32
	maxSessions = 64
)

// CSRFHeader carries the session's CSRF token on every action.
const CSRFHeader = "X-Tend-CSRF"

// grant is what a token or a session allows.
type grant struct {
	readOnly bool
	csrf     string // sessions only, filled in by session and redeem
	expires  time.Time
}

// keys are stored hashed: a lookup then takes the same time whatever a
// guess has in common with a real token, and the hashes can be written
// down for the next daemon without the tokens.
type key [sha256.Size]byte

func keyOf(secret string) key { return sha256.Sum256([]byte(secret)) }

// csrfOf is the CSRF token of session id: derived from it, so that it
// need not be stored, and no other hash of id (its key) reveals it.
func csrfOf(id string) string {
	sum := sha256.Sum256([]byte("tend dashboard csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// auth holds the one-time tokens and the sessions. persist, if set, gets
// them after every change, with mu held (so writes keep their order).
type auth struct {
	mu       sync.Mutex
	tokens   map[key]grant
	sessions map[key]grant
	now      func() time.Time
	persist  func(saved)
}

func newAuth() *auth {
	return &auth{tokens: map[key]grant{}, sessions: map[key]grant{}, now: time.Now}
}

// savedGrant is a token or a session as the state file keeps it: the
// hash of the secret, never the secret.
type savedGrant struct {
	Hash     string    `json:"sha256"`
	ReadOnly bool      `json:"read_only,omitempty"`
	Expires  time.Time `json:"expires"`
}

// saved is the tokens and sessions, as a daemon leaves them to the next.
type saved struct {
	Tokens   []savedGrant `json:"tokens"`
	Sessions []savedGrant `json:"sessions"`
}

// changed passes the tables to persist. Caller holds mu.
func (a *auth) changed() {
	if a.persist == nil {
		return
	}
	out := func(m map[key]grant) []savedGrant {
		l := make([]savedGrant, 0, len(m))
		for k, g := range m {
			l = append(l, savedGrant{Hash: hex.EncodeToString(k[:]), ReadOnly: g.readOnly, Expires: g.expires})
		}
		slices.SortFunc(l, func(x, y savedGrant) int { return x.Expires.Compare(y.Expires) })
		return l
	}
	a.persist(saved{Tokens: out(a.tokens), Sessions: out(a.sessions)})
}

// restore takes back the tokens and sessions a daemon left, but those
// expired or malformed, and as many as the tables hold.
func (a *auth) restore(s saved) {
	a.mu.Lock()
	defer a.mu.Unlock()
	in := func(m map[key]grant, l []savedGrant, limit int) {
		for _, sg := range l {
			b, err := hex.DecodeString(sg.Hash)
			if err != nil || len(b) != sha256.Size || a.now().After(sg.Expires) {
				continue
			}
			a.expire(m, limit)
			m[key(b)] = grant{readOnly: sg.ReadOnly, expires: sg.Expires}
		}
	}
	in(a.tokens, s.Tokens, maxTokens)
	in(a.sessions, s.Sessions, maxSessions)
}

// secret returns 256 random bits, URL-safe.
func secret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// token mints a one-time token.
func (a *auth) token(readOnly bool) string {
	t := secret()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expire(a.tokens, maxTokens)
	a.tokens[keyOf(t)] = grant{readOnly: readOnly, expires: a.now().Add(tokenTTL)}
	a.changed()
	return t
}

// redeem trades a token for a new session (id and grant); the token is
// spent either way.
func (a *auth) redeem(token string) (string, grant, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(token)
	g, ok := a.tokens[k]
	delete(a.tokens, k)
	if !ok || a.now().After(g.expires) {
		if ok {
			a.changed()
		}
		return "", grant{}, false
	}
	id := secret()
	a.expire(a.sessions, maxSessions)
	s := grant{readOnly: g.readOnly, expires: a.now().Add(sessionTTL)}
	a.sessions[keyOf(id)] = s
	a.changed()
	s.csrf = csrfOf(id)
	return id, s, true
}

// session returns the session whose id is id.
func (a *auth) session(id string) (grant, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.sessions[keyOf(id)]
	if !ok || a.now().After(g.expires) {
		return grant{}, false
	}
	g.csrf = csrfOf(id)
	return g, true
}

// expire drops the expired entries of m, and the one closest to expiry
// while m is at limit.
func (a *auth) expire(m map[key]grant, limit int) {
	now := a.now()
	for k, g := range m {
		if now.After(g.expires) {
			delete(m, k)
		}
	}
	for len(m) >= limit {
		var oldest key
		first := true
		for k, g := range m {
			if first || g.expires.Before(m[oldest].expires) {
				oldest, first = k, false
			}
		}
		delete(m, oldest)
	}
}

// cookieName is per port: browsers share cookies across the ports of a
// host, and two homes may each serve a dashboard on 127.0.0.1.
func cookieName(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return "tend_session_" + strconv.Itoa(ta.Port)
	}
	return "tend_session"
}

// sameOrigin reports whether a request that changes something comes from
// the page itself. Browsers send Origin with every POST made by fetch;
// one that names another site, or a Sec-Fetch-Site that is not
// same-origin, is a cross-site request.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser; the CSRF header still has to match
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "http" && u.Host == r.Host
}
