package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/tendhq/tend"
)

// deliver posts h to url, retrying with a doubling wait, all within
// hookTimeout: a receiver that is down for a moment still hears of it,
// and one that never answers holds a worker no longer than that.
func (hk *hooks) deliver(url string, h Hook) error {
	body, err := json.Marshal(h)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(hk.ctx, hookTimeout)
	defer cancel()
	wait := hk.retry
	for try := 0; ; try++ {
		err = hk.post(ctx, url, body)
		if err == nil || try == hookRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
}

// hookClient posts notifications. It follows no redirect: Go would send
// the POST on as a GET without its body, and a 2xx to that would pass
// for a delivery.
var hookClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// postJSON POSTs body to url and wants a 2xx answer.
func postJSON(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tend/"+tend.Version)
	resp, err := hookClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fmt.Errorf("%s answered %s to %s: set notify_url to where it points", url, resp.Status, resp.Header.Get("Location"))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
