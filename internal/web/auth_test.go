package web

import (
	"testing"
	"time"
)

func TestTokensAreOneTimeAndExpire(t *testing.T) {
	a := newAuth()
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }

	tok := a.token(true)
	id, g, ok := a.redeem(tok)
	if !ok || !g.readOnly || g.csrf == "" || id == "" {
		t.Fatalf("redeem: %v %+v", ok, g)
	}
	if _, _, ok := a.redeem(tok); ok {
		t.Fatal("a token opened a second session")
	}
	if s, ok := a.session(id); !ok || s.csrf != g.csrf || !s.readOnly {
		t.Fatalf("session: %v %+v", ok, s)
	}

	late := a.token(false)
	now = now.Add(tokenTTL + time.Second)
	if _, _, ok := a.redeem(late); ok {
		t.Fatal("an expired token opened a session")
	}
	now = now.Add(sessionTTL)
	if _, ok := a.session(id); ok {
		t.Fatal("an expired session still works")
	}
}

func TestTokenTableIsBounded(t *testing.T) {
	a := newAuth()
	now := time.Unix(1_000_000, 0)
	a.now = func() time.Time { return now }
	var toks []string
	for range maxTokens + 10 {
		toks = append(toks, a.token(false))
		now = now.Add(time.Millisecond)
	}
	if len(a.tokens) > maxTokens {
		t.Fatalf("%d tokens kept, more than %d", len(a.tokens), maxTokens)
	}
	if _, _, ok := a.redeem(toks[0]); ok {
		t.Fatal("the oldest token survived past the limit")
	}
	if _, _, ok := a.redeem(toks[len(toks)-1]); !ok {
		t.Fatal("the newest token was dropped")
	}
}
