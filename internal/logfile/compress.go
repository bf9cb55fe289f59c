package logfile

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// startCompress makes sure the compressor runs. Called with s.mu held.
func (s *Sink) startCompress() {
	if s.compressing {
		return
	}
	s.compressing = true
	s.wg.Add(1)
	go s.compressLoop()
}

// compressLoop gzips rotated files one at a time, off the write path, until
// none is left uncompressed. It runs in the background because gzipping a
// 10 MB file takes tens of milliseconds that the app's pipe cannot wait for.
func (s *Sink) compressLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		lf, k, src := s.nextToCompress()
		if lf == nil {
			s.compressing = false
			s.mu.Unlock()
			return
		}
		// The source is opened under the lock, so a rotation cannot rename
		// it away in between; the rotation count tells where it went after.
		gen := lf.rotations
		s.mu.Unlock()

		tmp := lf.path + ".gz.tmp"
		err := gzipTo(tmp, src)
		src.Close()

		s.mu.Lock()
		idx := k + lf.rotations - gen
		switch {
		case err != nil:
			// Keep the uncompressed file: losing a log to a failed gzip
			// is worse than using more disk.
			os.Remove(tmp)
			s.compressErr = fmt.Errorf("compressing %s: %w", rotatedName(lf.path, idx, ""), err)
			s.compressing = false
			s.mu.Unlock()
			return
		case idx > s.opt.Keep:
			os.Remove(tmp) // rotated out while we worked
		default:
			if err := os.Rename(tmp, rotatedName(lf.path, idx, ".gz")); err != nil {
				os.Remove(tmp)
				s.compressErr = fmt.Errorf("compressing %s: %w", rotatedName(lf.path, idx, ""), err)
				s.compressing = false
				s.mu.Unlock()
				return
			}
			os.Remove(rotatedName(lf.path, idx, ""))
			s.compressErr = nil
		}
		s.mu.Unlock()
	}
}

// nextToCompress finds the newest rotated file without a .gz and opens it.
// Called with s.mu held.
func (s *Sink) nextToCompress() (*logFile, int, *os.File) {
	for _, lf := range s.files() {
		for k := 1; k <= s.opt.Keep; k++ {
			f, err := os.Open(rotatedName(lf.path, k, ""))
			if err == nil {
				return lf, k, f
			}
		}
	}
	return nil, 0, nil
}

// gzipTo writes src, gzipped, to a new file at path.
func gzipTo(path string, src io.Reader) error {
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// BestSpeed: logs compress about 5-10x even so, and the CPU a
	// background gzip takes is CPU the apps do not get.
	zw, _ := gzip.NewWriterLevel(dst, gzip.BestSpeed)
	_, err = io.Copy(zw, src)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}
