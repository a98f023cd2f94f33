"""Draw a digit with the mouse and see what *your* network reads (lesson 6).

``DigitPad(net)`` is a widget (anywidget): a black pad to draw on in white; when the mouse is
released, the drawing goes through MNIST's own preprocessing (``preprocess``: crop to the ink, fit
into 20 x 20 pixels, centre by the centre of mass in 28 x 28), and the widget shows the 28 x 28
image the network gets, its guess and the ten probabilities. ``Clear`` starts again.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

PAD = 280          # the pad's size on screen, in CSS pixels
SENT = 70          # the browser sends the drawing as SENT x SENT grey levels (4 x 4 pixels averaged)
BOX, SIDE = 20, 28  # MNIST: each digit fitted into a 20 x 20 box, centred by mass in 28 x 28


def preprocess(drawing: np.ndarray) -> Optional[np.ndarray]:
    """MNIST's preprocessing of a drawing: white ink on black, any size.

    drawing: (H, W) grey levels 0..255 (ink bright).
    returns: (28, 28) uint8, the ink cropped, scaled (aspect kept) so that its longer side is 20
        pixels, and placed so that its centre of mass is the image's centre; None if there is no ink.
    """
    import torch
    import torch.nn.functional as F

    ink = np.asarray(drawing, dtype=np.float32)
    rows, cols = np.nonzero(ink > 0)
    if not len(rows):
        return None
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]        # crop to the ink: (h, w)
    scale = BOX / max(ink.shape)
    h, w = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    box = F.interpolate(torch.from_numpy(ink)[None, None], size=(h, w), mode="bilinear",
                        antialias=True, align_corners=False)[0, 0].numpy()  # (h, w), longer side 20
    weight = box.sum()
    com_r = (box.sum(axis=1) * np.arange(h)).sum() / weight                # centre of mass, in the box
    com_c = (box.sum(axis=0) * np.arange(w)).sum() / weight
    top = int(np.clip(round(SIDE / 2 - com_r), 0, SIDE - h))      # MNIST: the mass at pixel (14, 14)
    left = int(np.clip(round(SIDE / 2 - com_c), 0, SIDE - w))
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    out[top:top + h, left:left + w] = box
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)                  # (28, 28)


def classify(net, image: np.ndarray, to_x: Optional[Callable] = None) -> np.ndarray:
    """The network's probabilities for one (28, 28) uint8 image: (10,) float64, summing to 1.
    to_x: (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 tensor (default: pixels / 255)."""
    import torch

    to_x = to_x or (lambda images: torch.from_numpy(images[:, None].astype(np.float32) / 255))
    net.eval()
    with torch.no_grad():
        logits = net(to_x(image[None]))                                    # (1, 10)
    return torch.softmax(logits.double(), dim=1)[0].numpy()                # (10,)


def DigitPad(net, to_x: Optional[Callable] = None):
    """The drawing widget for ``net`` (see the module docstring). Shown by ending a cell with it."""
    import anywidget
    import traitlets

    class _Pad(anywidget.AnyWidget):
        _esm = _ESM
        _css = _CSS
        pixels = traitlets.List(traitlets.Int()).tag(sync=True)         # SENT * SENT grey levels, from the browser
        preview = traitlets.List(traitlets.Int()).tag(sync=True)        # 28 * 28: what the network gets
        probabilities = traitlets.List(traitlets.Float()).tag(sync=True)
        digit = traitlets.Int(-1).tag(sync=True)                        # -1: nothing drawn yet
        error = traitlets.Unicode("").tag(sync=True)

        @traitlets.observe("pixels")
        def _read(self, change):
            drawing = np.asarray(change["new"], dtype=np.uint8)
            image = preprocess(drawing.reshape(SENT, SENT)) if drawing.size == SENT * SENT else None
            if image is None:
                self.preview, self.probabilities, self.digit, self.error = [], [], -1, ""
                return
            try:
                probabilities = classify(net, image, to_x)
            except Exception as err:  # the student's network: say what went wrong, in the widget
                self.error = f"your network raised {type(err).__name__}: {err}"
                return
            with self.hold_sync():                  # one message: the browser redraws once
                self.preview = image.ravel().tolist()
                self.probabilities = [float(p) for p in probabilities]
                self.error = ""
                self.digit = int(np.argmax(probabilities))

    return _Pad()


_CSS = """
.digit-pad { display: flex; gap: 18px; align-items: flex-start; font-family: sans-serif; }
.digit-pad canvas.pad-canvas { background: black; cursor: crosshair; touch-action: none; border-radius: 4px; }
.digit-pad canvas.pad-preview { image-rendering: pixelated; background: black; border-radius: 4px; }
.digit-pad .pad-digit { font-size: 22px; margin: 6px 0; }
.digit-pad .pad-bar { display: flex; align-items: center; gap: 6px; font-size: 13px; height: 18px; }
.digit-pad .pad-bar div { background: #4a7bd0; height: 12px; }
.digit-pad .pad-error { color: #b00; max-width: 260px; }
"""

_ESM = """
const PAD = %(pad)d, SENT = %(sent)d;

function render({ model, el }) {
  el.classList.add("digit-pad");
  const left = document.createElement("div");
  const pad = document.createElement("canvas");
  pad.className = "pad-canvas"; pad.width = PAD; pad.height = PAD;
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const clear = document.createElement("button");
  clear.className = "pad-clear"; clear.textContent = "Clear";
  left.append(pad, document.createElement("br"), clear);
  const right = document.createElement("div");
  const preview = document.createElement("canvas");
  preview.className = "pad-preview"; preview.width = 28; preview.height = 28;
  preview.style.width = "112px"; preview.style.height = "112px";
  const caption = document.createElement("div"); caption.textContent = "what your network gets (28 x 28)";
  caption.style.fontSize = "12px";
  const digit = document.createElement("div"); digit.className = "pad-digit";
  const bars = document.createElement("div"); bars.className = "pad-bars";
  const error = document.createElement("div"); error.className = "pad-error";
  right.append(preview, caption, digit, bars, error);
  el.append(left, right);

  function blank() {
    ctx.fillStyle = "black"; ctx.fillRect(0, 0, PAD, PAD);
    ctx.strokeStyle = "white"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  }
  blank();
  let drawing = false;
  const at = (e) => { const r = pad.getBoundingClientRect();
                      return [(e.clientX - r.left) * PAD / r.width, (e.clientY - r.top) * PAD / r.height]; };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true; pad.setPointerCapture?.(e.pointerId);
    const [x, y] = at(e); ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke(); });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return; const [x, y] = at(e); ctx.lineTo(x, y); ctx.stroke(); });
  const done = () => { if (!drawing) return; drawing = false; send(); };
  pad.addEventListener("pointerup", done);
  pad.addEventListener("pointercancel", done);
  clear.addEventListener("click", () => { blank(); model.set("pixels", []); model.save_changes(); });

  function send() {   // SENT x SENT grey levels: each the mean of a k x k block of the pad's red channel
    const data = ctx.getImageData(0, 0, PAD, PAD).data, k = PAD / SENT, out = new Array(SENT * SENT);
    for (let i = 0; i < SENT; i++) for (let j = 0; j < SENT; j++) {
      let s = 0;
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) s += data[((i * k + a) * PAD + j * k + b) * 4];
      out[i * SENT + j] = Math.round(s / (k * k));
    }
    model.set("pixels", out); model.save_changes();
  }

  function update() {
    const pixels = model.get("preview"), probs = model.get("probabilities"), d = model.get("digit");
    const pctx = preview.getContext("2d"), img = pctx.createImageData(28, 28);
    for (let i = 0; i < 28 * 28; i++) {
      const v = pixels.length ? pixels[i] : 0;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
    }
    pctx.putImageData(img, 0, 0);
    digit.textContent = d >= 0 ? `your network reads: ${d} (${(100 * probs[d]).toFixed(0)}%%)` : "draw a digit";
    digit.dataset.digit = String(d);
    bars.replaceChildren(...probs.map((p, i) => {
      const row = document.createElement("div"); row.className = "pad-bar";
      const bar = document.createElement("div"); bar.style.width = `${Math.round(160 * p)}px`;
      row.append(`${i}`, bar, `${(100 * p).toFixed(1)}%%`); return row; }));
    error.textContent = model.get("error");
  }
  for (const name of ["digit", "preview", "probabilities", "error"]) model.on(`change:${name}`, update);
  update();
}
export default { render };
""" % {"pad": PAD, "sent": SENT}
