package logfile

import (
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/tendhq/tend/internal/private"
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

// compressJob is a rotated file being compressed.
type compressJob struct {
	lf  *logFile
	src *os.File
	k   int    // path.k, which later rotations rename; 0 for a dated file
	gen int    // lf.rotations when the job began
	at  string // a dated file's name, which does not change
}

// where returns the job's file's name now, "" when it was deleted
// meanwhile (rotated out). Called with s.mu held.
func (s *Sink) where(j compressJob) string {
	if j.k == 0 {
		if _, err := os.Lstat(j.at); err != nil {
			return ""
		}
		return j.at
	}
	if idx := j.k + j.lf.rotations - j.gen; idx <= s.opt.Keep {
		return rotatedName(j.lf.path, idx, "")
	}
	return ""
}

// compressLoop gzips rotated files one at a time, off the write path, until
// none is left uncompressed. It runs in the background because gzipping a
// 10 MB file takes tens of milliseconds that the app's pipe cannot wait for.
func (s *Sink) compressLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		j, ok := s.nextToCompress()
		if !ok {
			s.compressing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		tmp := j.lf.path + ".gz.tmp"
		err := gzipTo(tmp, j.src)
		j.src.Close()

		s.mu.Lock()
		name := s.where(j)
		if err == nil && name != "" {
			err = private.Rename(tmp, name+".gz", 0)
		}
		if err != nil || name == "" {
			private.Remove(tmp)
		}
		if err != nil {
			// Keep the uncompressed file: losing a log to a failed gzip
			// is worse than using more disk.
			s.compressErr = fmt.Errorf("compressing %s: %w", cmp.Or(name, j.src.Name()), err)
			s.compressing = false
			s.mu.Unlock()
			return
		}
		if name != "" {
			private.Remove(name)
			s.compressErr = nil
		}
		s.mu.Unlock()
	}
}

// nextToCompress finds a rotated file without a .gz and opens it: the
// newest, path.k or dated. The source is opened under s.mu, so a rotation
// cannot rename it away in between; the job's rotation count tells where
// it went after. Called with s.mu held.
func (s *Sink) nextToCompress() (compressJob, bool) {
	for _, lf := range s.files() {
		if s.opt.RotateAt == nil {
			for k := 1; k <= s.opt.Keep; k++ {
				if f, err := private.OpenFile(rotatedName(lf.path, k, ""), os.O_RDONLY, nil); err == nil {
					return compressJob{lf: lf, src: f, k: k, gen: lf.rotations}, true
				}
			}
			continue
		}
		// Dated names do not move, nor do numbered files left from before
		// RotateAt was set.
		files, _ := listRotated(lf.path)
		for _, rf := range files {
			if rf.gz {
				continue
			}
			if _, err := os.Lstat(rf.name + ".gz"); err == nil {
				continue
			}
			if f, err := private.OpenFile(rf.name, os.O_RDONLY, nil); err == nil {
				return compressJob{lf: lf, src: f, at: rf.name}, true
			}
		}
	}
	return compressJob{}, false
}

// gzipTo writes src, gzipped, to a new file at path.
func gzipTo(path string, src io.Reader) error {
	dst, err := private.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, nil)
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
