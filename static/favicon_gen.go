//go:build ignore

// favicon_gen makes favicon.ico from icon.svg: `go generate ./static`
// (Chromium on PATH, as for the e2e tests). Browsers that follow the
// layout's <link rel="icon"> get the SVG; /favicon.ico, which browsers,
// feed readers and bookmark tools fetch on their own, must be an ICO. The
// SVG is drawn once by Chromium at 384 px, then boxed down to 16, 32 and 48
// px (384 divides by each) and stored as PNGs inside the ICO, which every
// browser since IE9 reads. favicon.sha256 records which icon.svg it came
// from; TestFaviconFresh fails when icon.svg changes and this was not run.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"os/exec"
	"path/filepath"
)

const shot = 384

func main() {
	svg, err := os.ReadFile("icon.svg")
	if err != nil {
		log.Fatal(err)
	}
	big, err := render(svg)
	if err != nil {
		log.Fatal(err)
	}
	var pngs [][]byte
	sizes := []int{16, 32, 48}
	for _, n := range sizes {
		var b bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		if err := enc.Encode(&b, boxDown(big, n)); err != nil {
			log.Fatal(err)
		}
		pngs = append(pngs, b.Bytes())
	}
	if err := os.WriteFile("favicon.ico", ico(sizes, pngs), 0o644); err != nil {
		log.Fatal(err)
	}
	sum := sha256.Sum256(svg)
	if err := os.WriteFile("favicon.sha256", []byte(hex.EncodeToString(sum[:])+"  icon.svg\n"), 0o644); err != nil {
		log.Fatal(err)
	}
}

// render has headless Chromium draw the SVG on a transparent page.
func render(svg []byte) (image.Image, error) {
	dir, err := os.MkdirTemp("", "favicon")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "icon.svg"), svg, 0o644); err != nil {
		return nil, err
	}
	page := fmt.Sprintf(`<!doctype html><html><body style="margin:0;background:transparent">`+
		`<img src="icon.svg" width="%d" height="%d" style="display:block"></body></html>`, shot, shot)
	if err := os.WriteFile(filepath.Join(dir, "i.html"), []byte(page), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "shot.png")
	browser := "chromium"
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if _, err := exec.LookPath(name); err == nil {
			browser = name
			break
		}
	}
	cmd := exec.Command(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--default-background-color=00000000", fmt.Sprintf("--window-size=%d,%d", shot, shot),
		"--screenshot="+out, "file://"+filepath.Join(dir, "i.html"))
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", browser, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); b.Dx() != shot || b.Dy() != shot {
		return nil, fmt.Errorf("screenshot is %v, want %dx%d", b, shot, shot)
	}
	return img, nil
}

// boxDown averages each (shot/n)² block, in premultiplied alpha so the
// transparent corners do not darken the edge.
func boxDown(src image.Image, n int) *image.NRGBA {
	k := shot / n
	dst := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			var r, g, b, a uint64
			for yy := y * k; yy < (y+1)*k; yy++ {
				for xx := x * k; xx < (x+1)*k; xx++ {
					pr, pg, pb, pa := src.At(xx, yy).RGBA() // premultiplied, 16 bit
					r, g, b, a = r+uint64(pr), g+uint64(pg), b+uint64(pb), a+uint64(pa)
				}
			}
			c := color.RGBA64{R: uint16(r / uint64(k*k)), G: uint16(g / uint64(k*k)), B: uint16(b / uint64(k*k)), A: uint16(a / uint64(k*k))}
			dst.Set(x, y, c)
		}
	}
	return dst
}

// ico packs PNG images into an ICO file: a 6-byte header, a 16-byte entry
// per image, then the images.
func ico(sizes []int, pngs [][]byte) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(le.AppendUint16(nil, 0))                 // reserved
	b.Write(le.AppendUint16(nil, 1))                 // type: icon
	b.Write(le.AppendUint16(nil, uint16(len(pngs)))) // count
	off := 6 + 16*len(pngs)
	for i, p := range pngs {
		b.WriteByte(byte(sizes[i]))       // width (0 would mean 256)
		b.WriteByte(byte(sizes[i]))       // height
		b.WriteByte(0)                    // palette size
		b.WriteByte(0)                    // reserved
		b.Write(le.AppendUint16(nil, 1))  // colour planes
		b.Write(le.AppendUint16(nil, 32)) // bits per pixel
		b.Write(le.AppendUint32(nil, uint32(len(p))))
		b.Write(le.AppendUint32(nil, uint32(off)))
		off += len(p)
	}
	for _, p := range pngs {
		b.Write(p)
	}
	return b.Bytes()
}
