"""`probe.*`: reports that show where a CLIP fails, on the user's CLIP and images or on the synthetic world.

- `probe.robustness` (P29): zero-shot accuracy and calibration (ECE) under degradations and rendering shifts.
- `probe.spurious_background` (P49, CounterAnimal): accuracy on common vs uncommon backgrounds.
- `probe.concept_association` (P53): colour answers pulled towards a typical or co-present colour.
- `probe.fine_grained` (P25, MMVP-VLM): image pairs that differ visibly, told apart by text or not.

Each takes a CLIP spec (``clip``) and either the user's images (``items``/``pairs``) or builds a set
from the world's objects theme (``vltools.world``, exact labels); each returns typed figures and,
with ``report_dir``, writes a markdown report and a PNG figure (needs matplotlib, extra ``plots``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vltools.core.context import Context
from vltools.core.errors import InvalidInput
from vltools.core.tool import tool
from vltools.schemas import ToolInput
from vltools.tools._probe_common import LabelledImage, ReportFiles

Split = Literal["train", "heldout"]
Degradation = Literal["blur", "noise", "jpeg", "contrast", "pixelate"]
Shift = Literal["texture", "tint", "rotation", "small"]
CLIP_HELP = "CLIP spec: demo, open_clip:ARCH/TAG, ... (default: settings.clip)."
REPORT_HELP = "Folder (under the allowed roots) for a markdown report and a PNG figure (needs matplotlib)."
LABELS_HELP = "Candidate labels (default: the items' labels)."
SPLIT_HELP = "World source: concepts from the demo CLIP's train split or its held-out split."


# -- probe.robustness ---------------------------------------------------------------------------
class RobustnessInput(ToolInput):
    clip: str | None = Field(None, description=CLIP_HELP)
    items: list[LabelledImage] | None = Field(
        None, max_length=2000, description="Your labelled images; default: single-object world scenes."
    )
    labels: list[str] | None = Field(None, max_length=1000, description=LABELS_HELP)
    degradations: list[Degradation] = Field(
        ["blur", "noise", "jpeg", "contrast", "pixelate"], description="Degradations to apply (vltools.world.degrade)."
    )
    levels: list[int] = Field([1, 3, 5], min_length=1, max_length=5, description="Degradation levels, 1 (mild) .. 5.")
    shifts: list[Shift] = Field(
        ["texture", "tint", "rotation", "small"],
        description="World source only: rendering shifts (textured background, tinted, rotated, small objects).",
    )
    concepts: int = Field(12, ge=2, le=100, description="World source: number of concepts (the candidate labels).")
    per_concept: int = Field(2, ge=1, le=20, description="World source: images per concept.")
    split: Split = Field("train", description=SPLIT_HELP)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="World source seed.")
    report_dir: str | None = Field(None, description=REPORT_HELP)


class Condition(BaseModel):
    shift: str = Field(description="'clean', a degradation kind or a rendering shift.")
    level: int = Field(description="Degradation level (0 for clean and rendering shifts).")
    accuracy: float = Field(description="Top-1 zero-shot accuracy.")
    ece: float = Field(description="Expected calibration error (10 bins) of the top-1 probability.")
    confidence: float = Field(description="Mean top-1 probability.")
    drop: float = Field(description="Clean accuracy minus this accuracy.")
    n: int = Field(description="Images.")


class RobustnessOutput(ReportFiles):
    clip: str = Field(description="The CLIP spec probed.")
    labels: list[str] = Field(description="The candidate labels.")
    clean: Condition = Field(description="The undegraded images.")
    conditions: list[Condition] = Field(description="One per (degradation, level) and per rendering shift.")
    worst: str = Field(description="The condition with the lowest accuracy ('kind@level').")


def _condition(name: str, level: int, probs: Any, truth: Any, clean_acc: float | None) -> Condition:
    import numpy as np

    from vltools.tools._probe_common import ece

    pred = probs.argmax(1)
    correct = pred == truth
    conf = probs.max(1)
    acc = float(correct.mean())
    return Condition(shift=name, level=level, accuracy=acc, ece=ece(conf, correct), confidence=float(np.mean(conf)),
                     drop=0.0 if clean_acc is None else clean_acc - acc, n=int(len(truth)))


def _world_singles(names: list[str], per: int, seed: int, split: str, **kw: Any) -> tuple[list[Any], list[int]]:
    from vltools.world import generate_object_scene

    images, truth = [], []
    for ci, name in enumerate(names):
        for j in range(per):
            sc = generate_object_scene(seed * 100_003 + ci * 101 + j, concept_names=[name], split=split,
                                       image_size=112, blur=0.0, **kw)
            images.append(sc.image)
            truth.append(ci)
    return images, truth


@tool("probe.robustness")
def robustness(inp: RobustnessInput, ctx: Context) -> RobustnessOutput:
    """Probe a CLIP's zero-shot accuracy and calibration (ECE) under image degradations and rendering shifts, per
    level, on your labelled images or on world scenes.

    Degradations (blur, noise, jpeg, contrast, pixelate) at chosen levels; world scenes add rendering shifts
    (textured backgrounds, tints, rotation, small objects) against plain renderings (P29).
    """
    import numpy as np

    from vltools.tools import _probe_common as pc
    from vltools.world.degrade import degrade

    if any(not 1 <= lv <= 5 for lv in inp.levels):
        raise InvalidInput("levels must lie in 1..5", hint="e.g. [1, 3, 5]")
    paths = pc.report_paths(inp.report_dir, "robustness", ctx.settings)
    shifted: dict[str, list[Any]] = {}
    if inp.items is not None:
        if inp.shifts and "shifts" in inp.model_fields_set:
            raise InvalidInput("rendering shifts need the world source", hint="drop shifts or drop items")
        labels = pc.check_labels(inp.items, inp.labels)
        images = pc.load_images([it.image for it in inp.items], ctx.settings)
        truth = [labels.index(it.label) for it in inp.items]
    else:
        if inp.labels is not None:
            raise InvalidInput("labels go with items", hint="pass items, or drop labels for the world source")
        labels = pc.world_concepts(inp.concepts, inp.seed, inp.split)
        base = {"background": "plain", "rotate_p": 0.0}
        images, truth = _world_singles(labels, inp.per_concept, inp.seed, inp.split, **base)
        shift_args = {"texture": {"background": "texture", "rotate_p": 0.0}, "tint": {**base, "tint": True},
                      "rotation": {"background": "plain", "rotate_p": 1.0},
                      "small": {**base, "scale": (0.18, 0.24)}}
        for s in inp.shifts:
            shifted[s] = _world_singles(labels, inp.per_concept, inp.seed, inp.split, **shift_args[s])[0]
    backend = ctx.clip(inp.clip)
    text = pc.text_matrix(backend, labels, pc.TEMPLATES)
    truth_arr = np.asarray(truth)
    total = 1 + len(inp.degradations) * len(inp.levels) + len(shifted)
    done = 0

    def run(imgs: list[Any]) -> Any:
        nonlocal done
        probs = pc.softmax_probs(backend, backend.encode_images(imgs), text)
        done += 1
        ctx.progress(done, total, "conditions probed")
        return probs

    clean = _condition("clean", 0, run(images), truth_arr, None)
    conds = []
    for kind in inp.degradations:
        for lv in inp.levels:
            imgs = [degrade(im, kind, lv, seed=i) for i, im in enumerate(images)]
            conds.append(_condition(kind, lv, run(imgs), truth_arr, clean.accuracy))
    for s, imgs in shifted.items():
        conds.append(_condition(s, 0, run(imgs), truth_arr, clean.accuracy))
    worst = min(conds, key=lambda c: c.accuracy) if conds else clean
    rows = [[c.shift, c.level, c.accuracy, c.ece, c.confidence, c.drop, c.n] for c in [clean, *conds]]
    lines = [f"CLIP `{backend.spec}`, {len(labels)} labels, {len(images)} images.", "",
             *pc.md_table(["condition", "level", "accuracy", "ECE", "confidence", "drop", "n"], rows)]

    def draw(ax: Any) -> None:
        for kind in inp.degradations:
            cs = [c for c in conds if c.shift == kind]
            ax.plot([0, *[c.level for c in cs]], [clean.accuracy, *[c.accuracy for c in cs]], marker="o", label=kind)
        for c in conds:
            if c.level == 0:
                ax.scatter([0], [c.accuracy], marker="x", label=f"shift: {c.shift}")
        ax.set_xlabel("degradation level")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))  # outside: never hides a point

    files = pc.write_report(paths, "CLIP robustness (P29)", lines, draw)
    return RobustnessOutput(clip=backend.spec, labels=labels, clean=clean, conditions=conds,
                            worst=f"{worst.shift}@{worst.level}", **files.model_dump())


# -- probe.spurious_background ------------------------------------------------------------------
class BackgroundInput(ToolInput):
    clip: str | None = Field(None, description=CLIP_HELP)
    common: list[LabelledImage] | None = Field(
        None, max_length=2000, description="Your objects on their common backgrounds (give counter too)."
    )
    counter: list[LabelledImage] | None = Field(
        None, max_length=2000, description="The same kinds of objects on uncommon backgrounds."
    )
    labels: list[str] | None = Field(None, max_length=1000, description=LABELS_HELP)
    concepts: int = Field(12, ge=2, le=100, description="World source: number of concepts (the candidate labels).")
    per_concept: int = Field(3, ge=1, le=20, description="World source: images per concept and group.")
    object_scale: tuple[float, float] = Field(
        (0.18, 0.26), description="World source: (min, max) object side as a fraction of the image side; smaller "
        "objects leave more background for the model to lean on."
    )
    split: Split = Field("train", description=SPLIT_HELP)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="World source seed.")
    report_dir: str | None = Field(None, description=REPORT_HELP)


class Group(BaseModel):
    name: str = Field(description="common, counter (or neutral: plain backgrounds, world source).")
    accuracy: float = Field(description="Top-1 zero-shot accuracy.")
    true_probability: float = Field(description="Mean probability of the true label.")
    n: int = Field(description="Images.")


class ConceptDrop(BaseModel):
    label: str = Field(description="The label.")
    common: float = Field(description="Accuracy on common backgrounds.")
    counter: float = Field(description="Accuracy on uncommon backgrounds.")


class BackgroundOutput(ReportFiles):
    clip: str = Field(description="The CLIP spec probed.")
    labels: list[str] = Field(description="The candidate labels.")
    groups: list[Group] = Field(description="Accuracy per group.")
    drop: float = Field(description="Common minus counter accuracy (> 0: the model leans on backgrounds).")
    probability_drop: float = Field(description="Common minus counter mean true-label probability.")
    per_label: list[ConceptDrop] = Field(description="Accuracies per label, largest drop first.")


@tool("probe.spurious_background")
def spurious_background(inp: BackgroundInput, ctx: Context) -> BackgroundOutput:
    """Probe how much a CLIP relies on backgrounds: zero-shot accuracy on objects on their common backgrounds vs
    uncommon ones, and the drop.

    CounterAnimal-style (P49): your own common/counter image groups, or world objects rendered on their natural
    place vs another place (plus plain backgrounds as a neutral reference).
    """
    import numpy as np

    from vltools.tools import _probe_common as pc

    paths = pc.report_paths(inp.report_dir, "spurious_background", ctx.settings)
    groups: dict[str, tuple[list[Any], list[int]]] = {}
    if (inp.common is None) != (inp.counter is None):
        raise InvalidInput("give both common and counter groups, or neither (world source)")
    if inp.common is not None and inp.counter is not None:
        labels = pc.check_labels([*inp.common, *inp.counter], inp.labels)
        for name, items in (("common", inp.common), ("counter", inp.counter)):
            if not items:
                raise InvalidInput(f"the {name} group is empty", hint="give at least one image per group")
            groups[name] = (pc.load_images([it.image for it in items], ctx.settings),
                            [labels.index(it.label) for it in items])
    else:
        if inp.labels is not None:
            raise InvalidInput("labels go with common/counter", hint="drop labels for the world source")
        from vltools.world.backgrounds import PLACES, natural_place
        from vltools.world.concept_table import concept
        from vltools.world.objects import generate_object_scene

        lo, hi = inp.object_scale
        if not 0.05 <= lo <= hi <= 0.9:
            raise InvalidInput("object_scale must be (min, max) with 0.05 <= min <= max <= 0.9",
                               hint="e.g. [0.18, 0.26]")
        scale = (lo, hi)
        labels = pc.world_concepts(inp.concepts, inp.seed, inp.split)
        rng = np.random.default_rng([inp.seed, 4901])
        for name in ("common", "counter", "neutral"):
            groups[name] = ([], [])
        for ci, lab in enumerate(labels):
            row = concept(lab)
            home = natural_place(row["category"], row["subcategory"])
            others = [p for p in PLACES if p != home]
            for j in range(inp.per_concept):
                seed = inp.seed * 100_003 + ci * 101 + j
                away = others[int(rng.integers(len(others)))]
                for name, bg in (("common", home), ("counter", away), ("neutral", "plain")):
                    sc = generate_object_scene(seed, concept_names=[lab], split="all", image_size=112, background=bg,
                                               blur=0.0, scale=scale)
                    groups[name][0].append(sc.image)
                    groups[name][1].append(ci)
    backend = ctx.clip(inp.clip)
    text = pc.text_matrix(backend, labels, pc.TEMPLATES)
    out_groups, correct_by = [], {}
    for k, (name, (imgs, truth)) in enumerate(groups.items()):
        probs = pc.softmax_probs(backend, backend.encode_images(imgs), text)
        t = np.asarray(truth)
        correct = probs.argmax(1) == t
        correct_by[name] = (t, correct)
        out_groups.append(Group(name=name, accuracy=float(correct.mean()),
                                true_probability=float(probs[np.arange(len(t)), t].mean()), n=len(t)))
        ctx.progress(k + 1, len(groups), "groups probed")
    by = {g.name: g for g in out_groups}
    per_label = []
    for li, lab in enumerate(labels):
        accs = []
        for name in ("common", "counter"):
            t, c = correct_by[name]
            sel = t == li
            accs.append(float(c[sel].mean()) if sel.any() else float("nan"))
        if not any(np.isnan(accs)):
            per_label.append(ConceptDrop(label=lab, common=accs[0], counter=accs[1]))
    per_label.sort(key=lambda d: d.counter - d.common)
    drop = by["common"].accuracy - by["counter"].accuracy
    pdrop = by["common"].true_probability - by["counter"].true_probability
    lines = [f"CLIP `{backend.spec}`, {len(labels)} labels.", "",
             *pc.md_table(["group", "accuracy", "true-label probability", "n"],
                          [[g.name, g.accuracy, g.true_probability, g.n] for g in out_groups]),
             "", f"Accuracy drop common -> counter: **{drop:+.3f}** (probability drop {pdrop:+.3f})."]

    def draw(ax: Any) -> None:
        ax.bar([g.name for g in out_groups], [g.accuracy for g in out_groups], color=["#4c72b0", "#c44e52", "#999"])
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)

    files = pc.write_report(paths, "Spurious backgrounds (P49)", lines, draw)
    return BackgroundOutput(clip=backend.spec, labels=labels, groups=out_groups, drop=drop, probability_drop=pdrop,
                            per_label=per_label, **files.model_dump())


# -- probe.concept_association ------------------------------------------------------------------
class ColourItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, description="Path of the image.")
    object: str = Field(min_length=1, description="The object whose colour is asked ('lemon').")
    colour: str = Field(min_length=1, description="Its true colour in this image (one of colours).")
    associated: str = Field(
        min_length=1,
        description="The colour the answer may be pulled to: the object's typical colour, or another object's.",
    )


class AssociationInput(ToolInput):
    clip: str | None = Field(None, description=CLIP_HELP)
    items: list[ColourItem] | None = Field(None, max_length=2000, description="Your images; default: world sets.")
    colours: list[str] | None = Field(
        None, max_length=50, description="Candidate colour words (default with items: the items' colours).",
    )
    concepts: int = Field(12, ge=2, le=100, description="World source: number of concepts with a typical colour.")
    split: Split = Field("train", description=SPLIT_HELP)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="World source seed.")
    report_dir: str | None = Field(None, description=REPORT_HELP)


class PullFigure(BaseModel):
    setting: str = Field(
        description="tinted (object in a colour against its typical one), pair (object beside another of another "
        "colour, P53), alone (the same objects alone: the pair's control), or items (your images)."
    )
    accuracy: float = Field(description="Share of colour answers equal to the true colour.")
    pull: float = Field(description="Share of colour answers equal to the associated colour.")
    n: int = Field(description="Questions.")


class AssociationOutput(ReportFiles):
    clip: str = Field(description="The CLIP spec probed.")
    colours: list[str] = Field(description="The candidate colours.")
    figures: list[PullFigure] = Field(description="Accuracy and pull per setting.")
    pull_ratio: float = Field(
        description="Tinted (or items) setting: share of wrong answers that are the associated colour, over what "
        "uniform errors would give (1 = no bias, > 1 = pulled towards the association)."
    )
    association_pull: float | None = Field(
        None, description="World source: pull in pairs minus pull alone (> 0: the co-present object's colour leaks)."
    )


def _colour_answers(backend: Any, images: list[Any], objects: list[str], colours: list[str]) -> list[str]:
    """The colour whose prompt 'a COLOUR OBJECT' best matches each image (all prompts embedded in one batch)."""
    import numpy as np

    from vltools.tools import _probe_common as pc

    feats = backend.encode_images(images)
    objs = list(dict.fromkeys(objects))
    text = pc.text_matrix(backend, [f"{k} {o}" for o in objs for k in colours], ["a photo of a {}."])
    text = text.reshape(len(objs), len(colours), -1)
    return [colours[int(np.argmax(text[objs.index(o)] @ f))] for f, o in zip(feats, objects, strict=True)]


def _pull(setting: str, answers: list[str], truth: list[str], assoc: list[str]) -> PullFigure:
    n = len(answers)
    return PullFigure(setting=setting, accuracy=sum(a == t for a, t in zip(answers, truth, strict=True)) / n,
                      pull=sum(a == s for a, s in zip(answers, assoc, strict=True)) / n, n=n)


def _pull_ratio(answers: list[str], truth: list[str], assoc: list[str], k: int) -> float:
    wrong = [(a, s) for a, t, s in zip(answers, truth, assoc, strict=True) if a != t]
    if not wrong or k < 3:
        return 1.0
    return (sum(a == s for a, s in wrong) / len(wrong)) * (k - 1)


@tool("probe.concept_association")
def concept_association(inp: AssociationInput, ctx: Context) -> AssociationOutput:
    """Probe a CLIP's concept association bias: how often its colour answers are pulled towards an object's typical
    colour or a co-present object's colour.

    P53 ("when are lemons purple"): objects tinted against their typical colour, and objects beside another object
    of another colour (vs alone), on world scenes or your own images.
    """
    import numpy as np

    from vltools.tools import _probe_common as pc

    paths = pc.report_paths(inp.report_dir, "concept_association", ctx.settings)
    figures: list[PullFigure] = []
    assoc_pull = None
    backend = None
    if inp.items is not None:
        colours = list(dict.fromkeys(inp.colours or [c for it in inp.items for c in (it.colour, it.associated)]))
        unknown = sorted({c for it in inp.items for c in (it.colour, it.associated)} - set(colours))
        if unknown:
            raise InvalidInput(f"colour {unknown[0]!r} is not among colours", hint="add it to colours")
        if len(colours) < 2:
            raise InvalidInput("need at least two candidate colours", hint="pass colours")
        images = pc.load_images([it.image for it in inp.items], ctx.settings)
        backend = ctx.clip(inp.clip)
        answers = _colour_answers(backend, images, [it.object for it in inp.items], colours)
        truth, assoc = [it.colour for it in inp.items], [it.associated for it in inp.items]
        figures.append(_pull("items", answers, truth, assoc))
        ratio = _pull_ratio(answers, truth, assoc, len(colours))
    else:
        if inp.colours is not None:
            raise InvalidInput("colours go with items", hint="drop colours for the world source")
        from vltools.tools._probe_pairs import compose, pick, typical_colours
        from vltools.world.concept_table import concept_names
        from vltools.world.objects import TINTS

        typical = typical_colours()
        allowed = set(concept_names(inp.split))
        names = pc.world_concepts(inp.concepts, inp.seed, inp.split, keep=lambda r: r["name"] in typical
                                  and r["name"] in allowed)
        colours = [c for c in TINTS if c not in ("gray", "black")]
        rng = np.random.default_rng([inp.seed, 5302])
        backend = ctx.clip(inp.clip)
        tinted, t_truth, t_assoc, objs = [], [], [], []
        for i, c in enumerate(names):
            for k in pick([x for x in colours if x != typical[c]], 2, rng):
                tinted.append(compose([(c, 0.5, 0.5, 0.6, k, 0)], inp.seed * 1000 + i))
                t_truth.append(k)
                t_assoc.append(typical[c])
                objs.append(c)
        answers = _colour_answers(backend, tinted, objs, colours)
        figures.append(_pull("tinted", answers, t_truth, t_assoc))
        ratio = _pull_ratio(answers, t_truth, t_assoc, len(colours))
        ctx.progress(1, 2, "tinted objects probed")
        pair_imgs, alone_imgs, p_obj, p_truth, p_assoc = [], [], [], [], []
        for i, a in enumerate(names):
            partners = [b for b in names if typical[b] != typical[a]]
            if not partners:
                continue
            b = partners[int(rng.integers(len(partners)))]
            s = inp.seed * 1000 + 500 + i
            pair_imgs.append(compose([(a, 0.28, 0.5, 0.42, None, 0), (b, 0.72, 0.5, 0.42, None, 0)], s))
            alone_imgs.append(compose([(a, 0.28, 0.5, 0.42, None, 0)], s))
            p_obj.append(a)
            p_truth.append(typical[a])
            p_assoc.append(typical[b])
        if p_obj:
            pair = _pull("pair", _colour_answers(backend, pair_imgs, p_obj, colours), p_truth, p_assoc)
            alone = _pull("alone", _colour_answers(backend, alone_imgs, p_obj, colours), p_truth, p_assoc)
            figures += [pair, alone]
            assoc_pull = pair.pull - alone.pull
        ctx.progress(2, 2, "object pairs probed")
    lines = [f"CLIP `{backend.spec}`, colours: {', '.join(colours)}.", "",
             *pc.md_table(["setting", "accuracy", "pull", "n"],
                          [[f.setting, f.accuracy, f.pull, f.n] for f in figures]),
             "", f"Pull ratio (errors going to the associated colour vs uniform errors): **{ratio:.2f}**."]
    if assoc_pull is not None:
        lines.append(f"Association pull (pair minus alone): **{assoc_pull:+.3f}**.")

    def draw(ax: Any) -> None:
        xs = np.arange(len(figures))
        ax.bar(xs - 0.2, [f.accuracy for f in figures], 0.4, label="accuracy")
        ax.bar(xs + 0.2, [f.pull for f in figures], 0.4, label="pulled to association")
        ax.set_xticks(xs, [f.setting for f in figures])
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)

    files = pc.write_report(paths, "Concept association bias (P53)", lines, draw)
    return AssociationOutput(clip=backend.spec, colours=colours, figures=figures, pull_ratio=ratio,
                             association_pull=assoc_pull, **files.model_dump())


# -- probe.fine_grained -------------------------------------------------------------------------
Factor = Literal["count", "orientation", "position", "colour"]


class ImagePair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_a: str = Field(min_length=1, description="First image.")
    image_b: str = Field(min_length=1, description="Second image, visibly different from the first.")
    text_a: str = Field(min_length=1, description="Statement true of image_a only.")
    text_b: str = Field(min_length=1, description="Statement true of image_b only.")
    factor: str = Field("custom", min_length=1, description="What differs (count, orientation, position, colour...).")


class FineGrainedInput(ToolInput):
    clip: str | None = Field(None, description=CLIP_HELP)
    pairs: list[ImagePair] | None = Field(None, max_length=2000, description="Your image pairs; default: world pairs.")
    factors: list[Factor] = Field(
        ["count", "orientation", "position", "colour"], min_length=1, description="World source: factors to vary."
    )
    concepts: int = Field(10, ge=1, le=100, description="World source: pairs per factor (one per concept).")
    blind_threshold: float = Field(
        0.95, ge=0, le=1, description="Image-image cosine at or above which a pair counts as CLIP-blind (MMVP)."
    )
    split: Split = Field("train", description=SPLIT_HELP)
    seed: int = Field(0, ge=0, le=2**31 - 1, description="World source seed.")
    report_dir: str | None = Field(None, description=REPORT_HELP)


class FactorFigure(BaseModel):
    factor: str = Field(description="What differs within the pairs.")
    pair_accuracy: float = Field(description="MMVP-VLM score: both images matched to their own statement.")
    image_accuracy: float = Field(description="Share of single images matched to their own statement.")
    image_cosine: float = Field(description="Mean CLIP cosine between the two images of a pair.")
    blind_fraction: float = Field(description="Share of pairs at or above blind_threshold (CLIP-blind pairs).")
    pairs: int = Field(description="Pairs.")


class FineGrainedOutput(ReportFiles):
    clip: str = Field(description="The CLIP spec probed.")
    factors: list[FactorFigure] = Field(description="Figures per factor.")
    pair_accuracy: float = Field(description="Over all pairs (chance = 0.25).")
    hardest: str = Field(description="The factor with the lowest pair accuracy.")


@tool("probe.fine_grained")
def fine_grained(inp: FineGrainedInput, ctx: Context) -> FineGrainedOutput:
    """Probe a CLIP's fine-grained vision with MMVP-style image pairs that differ visibly (count, orientation, position,
    colour): how often it matches both images to their own statements.

    P25 (MMVP-VLM): per factor the pair accuracy (chance 0.25), image-image cosine and share of CLIP-blind pairs, on
    world pairs or your own.
    """
    import numpy as np

    from vltools.tools import _probe_common as pc

    paths = pc.report_paths(inp.report_dir, "fine_grained", ctx.settings)
    if inp.pairs is not None:
        imgs = pc.load_images([p for pr in inp.pairs for p in (pr.image_a, pr.image_b)], ctx.settings)
        pairs = [{"image_a": imgs[2 * i], "image_b": imgs[2 * i + 1], "text_a": pr.text_a, "text_b": pr.text_b,
                  "factor": pr.factor} for i, pr in enumerate(inp.pairs)]
    else:
        from vltools.tools._probe_pairs import fine_grained_pairs

        names = pc.world_concepts(inp.concepts, inp.seed, inp.split)
        pairs = [p for f in inp.factors for p in fine_grained_pairs(f, names, inp.seed)]
    backend = ctx.clip(inp.clip)
    figures = []
    order = list(dict.fromkeys(p["factor"] for p in pairs))
    all_ok = []
    for k, factor in enumerate(order):
        ps = [p for p in pairs if p["factor"] == factor]
        fa = backend.encode_images([p["image_a"] for p in ps])
        fb = backend.encode_images([p["image_b"] for p in ps])
        ta = pc.text_matrix(backend, [p["text_a"] for p in ps], ["a photo of {}.", "{}"])
        tb = pc.text_matrix(backend, [p["text_b"] for p in ps], ["a photo of {}.", "{}"])
        a_ok = (fa * ta).sum(1) > (fa * tb).sum(1)
        b_ok = (fb * tb).sum(1) > (fb * ta).sum(1)
        ok = a_ok & b_ok
        all_ok += ok.tolist()
        cos = (fa * fb).sum(1)
        figures.append(FactorFigure(
            factor=factor, pair_accuracy=float(ok.mean()), image_accuracy=float((a_ok.mean() + b_ok.mean()) / 2),
            image_cosine=float(cos.mean()), blind_fraction=float((cos >= inp.blind_threshold).mean()), pairs=len(ps)))
        ctx.progress(k + 1, len(order), "factors probed")
    hardest = min(figures, key=lambda f: f.pair_accuracy).factor
    overall = float(np.mean(all_ok))
    lines = [f"CLIP `{backend.spec}`, {len(pairs)} pairs (pair accuracy chance = 0.25).", "",
             *pc.md_table(["factor", "pair accuracy", "image accuracy", "image cosine", "blind share", "pairs"],
                          [[f.factor, f.pair_accuracy, f.image_accuracy, f.image_cosine, f.blind_fraction, f.pairs]
                           for f in figures]),
             "", f"Overall pair accuracy **{overall:.3f}**; hardest factor: **{hardest}**."]

    def draw(ax: Any) -> None:
        xs = np.arange(len(figures))
        ax.bar(xs - 0.2, [f.pair_accuracy for f in figures], 0.4, label="pair accuracy")
        ax.bar(xs + 0.2, [f.image_cosine for f in figures], 0.4, label="image-image cosine")
        ax.axhline(0.25, ls="--", c="k", lw=0.8, label="chance")
        ax.set_xticks(xs, [f.factor for f in figures])
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)

    files = pc.write_report(paths, "Fine-grained pairs (P25, MMVP-VLM)", lines, draw)
    return FineGrainedOutput(clip=backend.spec, factors=figures, pair_accuracy=overall, hardest=hardest,
                             **files.model_dump())
