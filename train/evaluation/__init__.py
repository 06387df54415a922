"""Evaluation of a PortraitGAN model against three baselines on held-out pairs of a prepared folder.

Pairs (I_A, I_B) are two images of one person in the split: every ordered expression pair of the
photos (both directions, neutral->smiling and smiling->neutral, each its own task; ``--pairs`` keeps
only the listed ones) and, for modality translation, each photo against each other modality of the
same expression. Every method turns I_A into an output for (L_B, c_B):

* ``portraitgan``: G(I_A, L_B, c_B), as the editor returns it (a grey modality of the model's
  ``achromatic_modalities`` without colour: ``composition.remove_colour``);
* ``tps_warp``: I_A warped from L_A to L_B by the thin-plate-spline warp that the warp-guided
  generator applies first (``thin_plate_spline.warp_by_landmarks``): what G adds beyond it;
* ``warp``: I_A piecewise-affinely warped from L_A to L_B (:mod:`.piecewise_affine`);
* ``no_edit``: I_A itself.

For modality translation L_A = L_B, so both warps equal ``no_edit``.

Scores per output: MSE and SSIM against I_B (Table 1 of the paper; for modality translation I_B is
the stylized pseudo-target), SSIM in a fixed window around the mouth (points 48-67 of L_B, padded
by 15 %, the same pixels for every method), NME of the landmarks dlib finds on the output against
L_B, the dlib face-recognition distance between input and output (same person below 0.6) and the
mean chroma. Outputs where dlib finds no face get no NME or distance and are counted.

No-op fidelity (``--no-op-photos N``, 0 = off): for the first N source photos, the original
full-resolution photo (``landmarks/<stem>.json`` "source" under ``prepare_config.json``
"source_dir"; skipped with a note when it is not there) goes through the whole edit path with its
own landmarks -- ``FaceEditor.prepare``, ``stages.render``, ``composition.compose``, not ``edit``, which
returns a no-op edit's photo untouched -- and is compared with the photo inside the detected face
box: PSNR and the ratio of Laplacian variances (fine detail kept).

:func:`.gates.gates` turns the means into pass/fail checks. Writes ``metrics.json`` (per pair, means,
no-op fidelity, gates), ``metrics.md`` (one table per task, the no-op table and the gate table) and
``best_worst.png`` (per direction, the pairs of highest and lowest model SSIM: input | target
landmarks | TPS warp | piecewise-affine warp | PortraitGAN | target).

Modules, in the order of a run:

* :mod:`.pairs`: the options (:class:`~.pairs.EvaluationConfig`), the methods and the pairs;
* :mod:`.evaluator`: the outputs of every method on a batch of pairs, and their scores;
* :mod:`.piecewise_affine`: the piecewise-affine warp baseline;
* :mod:`.no_op`: no-op fidelity at full resolution;
* :mod:`.gates`: means per task and the pass/fail gates;
* :mod:`.report`: ``metrics.md``;
* :mod:`.pictures`: ``best_worst.png``;
* :mod:`.run`: :func:`~.run.evaluate`, the whole run;
* :mod:`.cli`: the command line (``python -m train.evaluate``, ``python train/evaluate.py``).
"""
