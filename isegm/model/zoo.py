"""Known checkpoints by their published names (a registry in the spirit of timm's).

Each entry: the file name it has in the weights folder, its family (how it is built), what it does
(``click`` or ``extreme``), where it was published and the figures published for it. Names of the
reference experiments (``hrnet18_cocolvis_itermask_3p`` ...) are accepted as aliases.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

RITM_URL = 'https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/'
FBRS_URL = 'https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/'
DEXTR_URL = 'https://data.vision.ee.ethz.ch/kmaninis/share/DEXTR/Downloads/models/'


@dataclass(frozen=True)
class ZooEntry:
    name: str
    file: str
    family: str            # ritm-hrnet | ritm-deeplab | fbrs-hrnet | fbrs-deeplab | dextr | compact
    task: str              # click | extreme
    url: Optional[str] = None
    sha256: Optional[str] = None
    trained_on: str = ''
    description: str = ''
    # Published NoC figures: {dataset: {'NoC@85': x, 'NoC@90': y}} / mIoU for extreme-point models.
    published: Dict[str, Dict[str, float]] = field(default_factory=dict)
    aliases: tuple = ()
    bundled: bool = False   # shipped in weights/ with the project


def _noc(gc85=None, gc90=None, bk90=None, sbd85=None, sbd90=None, davis85=None, davis90=None,
         voc85=None, mval90=None) -> Dict[str, Dict[str, float]]:
    table = {'GrabCut': {'NoC@85': gc85, 'NoC@90': gc90}, 'Berkeley': {'NoC@90': bk90},
             'SBD': {'NoC@85': sbd85, 'NoC@90': sbd90}, 'DAVIS': {'NoC@85': davis85, 'NoC@90': davis90},
             'PascalVOC': {'NoC@85': voc85}, 'COCO_MVal': {'NoC@90': mval90}}
    return {ds: {k: v for k, v in m.items() if v is not None} for ds, m in table.items()
            if any(v is not None for v in m.values())}


_ENTRIES: List[ZooEntry] = [
    # RITM (figures: RITM README, NoBRS, 20 clicks)
    ZooEntry('coco_lvis_h18_itermask', 'coco_lvis_h18_itermask.pth', 'ritm-hrnet', 'click',
             RITM_URL + 'coco_lvis_h18_itermask.pth', trained_on='COCO+LVIS',
             description='HRNetV2-W18 + OCR64, ITER-M',
             published=_noc(1.42, 1.54, 2.26, 3.80, 6.06, 4.36, 5.74, 2.28, 2.98),
             aliases=('hrnet18_cocolvis_itermask_3p',)),
    ZooEntry('coco_lvis_h18s_itermask', 'coco_lvis_h18s_itermask.pth', 'ritm-hrnet', 'click',
             RITM_URL + 'coco_lvis_h18s_itermask.pth', trained_on='COCO+LVIS',
             description='HRNetV2-W18-Small-v2 + OCR48, ITER-M',
             published=_noc(1.54, 1.68, 2.60, 4.04, 6.48, 4.70, 5.98, 2.57, 3.33),
             aliases=('hrnet18s_cocolvis_itermask_3p',)),
    ZooEntry('coco_lvis_h32_itermask', 'coco_lvis_h32_itermask.pth', 'ritm-hrnet', 'click',
             RITM_URL + 'coco_lvis_h32_itermask.pth', trained_on='COCO+LVIS',
             description='HRNetV2-W32 + OCR128, ITER-M',
             published=_noc(1.46, 1.56, 2.10, 3.59, 5.71, 4.11, 5.34, 2.57, 2.97),
             aliases=('hrnet32_cocolvis_itermask_3p',)),
    ZooEntry('coco_lvis_h18_baseline', 'coco_lvis_h18_baseline.pth', 'ritm-hrnet', 'click',
             RITM_URL + 'coco_lvis_h18_baseline.pth', trained_on='COCO+LVIS',
             description='HRNetV2-W18 + OCR64, non-iterative baseline',
             published=_noc(1.54, 1.70, 2.48, 4.26, 6.86, 4.79, 6.00, 2.59, 3.58),
             aliases=('hrnet18_ocr64_cocolvis',)),
    ZooEntry('sbd_h18_itermask', 'sbd_h18_itermask.pth', 'ritm-hrnet', 'click',
             RITM_URL + 'sbd_h18_itermask.pth', trained_on='SBD',
             description='HRNetV2-W18 + OCR64, ITER-M',
             published=_noc(1.76, 2.04, 3.22, 3.39, 5.43, 4.94, 6.71, 2.51, 4.39),
             aliases=('hrnet18_sbd_itermask',)),
    # f-BRS (bare state_dicts; figures: f-BRS paper, f-BRS-B, where published)
    ZooEntry('resnet34_dh128_sbd', 'resnet34_dh128_sbd.pth', 'fbrs-deeplab', 'click',
             FBRS_URL + 'resnet34_dh128_sbd.pth', trained_on='SBD', description='DeepLabV3+ ResNet-34, 128 ch'),
    ZooEntry('resnet50_dh128_sbd', 'resnet50_dh128_sbd.pth', 'fbrs-deeplab', 'click',
             FBRS_URL + 'resnet50_dh128_sbd.pth', trained_on='SBD', description='DeepLabV3+ ResNet-50, 128 ch'),
    ZooEntry('resnet101_dh256_sbd', 'resnet101_dh256_sbd.pth', 'fbrs-deeplab', 'click',
             FBRS_URL + 'resnet101_dh256_sbd.pth', trained_on='SBD', description='DeepLabV3+ ResNet-101, 256 ch',
             published={'GrabCut': {'NoC@90': 2.72}, 'Berkeley': {'NoC@90': 4.57},
                        'DAVIS': {'NoC@90': 7.41}, 'SBD': {'NoC@85': 4.81, 'NoC@90': 7.73}}),
    ZooEntry('hrnet18_ocr64_sbd', 'hrnet18_ocr64_sbd.pth', 'fbrs-hrnet', 'click',
             FBRS_URL + 'hrnet18_ocr64_sbd.pth', trained_on='SBD', description='HRNetV2-W18 + OCR64'),
    ZooEntry('hrnet32_ocr128_sbd', 'hrnet32_ocr128_sbd.pth', 'fbrs-hrnet', 'click',
             FBRS_URL + 'hrnet32_ocr128_sbd.pth', trained_on='SBD', description='HRNetV2-W32 + OCR128'),
    ZooEntry('resnet50_dh128_lvis', 'resnet50_dh128_lvis.pth', 'fbrs-deeplab', 'click',
             FBRS_URL + 'resnet50_dh128_lvis.pth', trained_on='LVIS', description='DeepLabV3+ ResNet-50, 128 ch'),
    ZooEntry('hrnet32_ocr128_lvis', 'hrnet32_ocr128_lvis.pth', 'fbrs-hrnet', 'click',
             FBRS_URL + 'hrnet32_ocr128_lvis.pth', trained_on='LVIS', description='HRNetV2-W32 + OCR128'),
    # DEXTR (figures: DEXTR paper, mean IoU with 4 extreme points)
    ZooEntry('dextr_pascal-sbd', 'dextr_pascal-sbd.pth', 'dextr', 'extreme', DEXTR_URL + 'dextr_pascal-sbd.pth',
             trained_on='PASCAL + SBD', description='ResNet-101 + PSP, 4-channel input',
             published={'PascalVOC': {'mIoU': 91.5}}),
    ZooEntry('dextr_pascal', 'dextr_pascal.pth', 'dextr', 'extreme', DEXTR_URL + 'dextr_pascal.pth',
             trained_on='PASCAL', description='ResNet-101 + PSP, 4-channel input'),
    ZooEntry('dextr_coco', 'dextr_coco.pth', 'dextr', 'extreme', DEXTR_URL + 'dextr_coco.pth',
             trained_on='COCO', description='ResNet-101 + PSP, 4-channel input'),
]

# Bundled default models (trained by this project, shipped in weights/); see docs/training.md.
# Exported from the training runs with scripts/export_bundled.py (fp16 weights; info holds the data,
# commands, epochs and measured metrics).
_POOL = 'shared train pool: COCO_MVal_even (minus held-out), coco128-seg, BSDS500'
BUNDLED: List[ZooEntry] = [
    ZooEntry('isegm_compact_click', 'isegm_compact_click_bundled.pth', 'compact', 'click', trained_on=_POOL,
             description='EfficientNet-Lite0 + FPN, ITER-M (models/compact/efflite0_click_itermask.py)',
             aliases=('efflite0_click_itermask',), bundled=True),
    ZooEntry('isegm_compact_extreme', 'isegm_compact_extreme_bundled.pth', 'compact', 'extreme', trained_on=_POOL,
             description='EfficientNet-Lite0 + FPN, 4 extreme points, 320 px crops, masks refined by GrabCut '
                         '(models/compact/efflite0_extreme.py)',
             aliases=('efflite0_extreme',), bundled=True),
]

DEFAULT_CLICK_MODEL: Optional[str] = 'isegm_compact_click'
DEFAULT_EXTREME_MODEL: Optional[str] = 'isegm_compact_extreme'


def register(entry: ZooEntry) -> None:
    """Add an entry (used for the bundled models and by plugins)."""
    _BY_NAME[entry.name] = entry
    for alias in entry.aliases:
        _BY_NAME[alias] = entry


_BY_NAME: Dict[str, ZooEntry] = {}
for _e in _ENTRIES + BUNDLED:
    register(_e)


def get(name: str) -> Optional[ZooEntry]:
    """Entry for a name, an alias or a file name (with or without ``.pth``); None if unknown."""
    key = name[:-4] if name.endswith('.pth') else name
    if key in _BY_NAME:
        return _BY_NAME[key]
    for e in _BY_NAME.values():
        if e.file == name or e.file == key + '.pth':
            return e
    return None


def list_models(task: Optional[str] = None) -> List[ZooEntry]:
    seen, out = set(), []
    for e in _BY_NAME.values():
        if e.name not in seen and (task is None or e.task == task):
            seen.add(e.name)
            out.append(e)
    return out


def default_model_name(task: str = 'click') -> Optional[str]:
    return DEFAULT_CLICK_MODEL if task == 'click' else DEFAULT_EXTREME_MODEL
