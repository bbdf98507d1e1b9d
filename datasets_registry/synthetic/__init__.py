"""A generated chest X-ray report task for the CPU demo and the tests (nothing is downloaded).

Each study has a frontal (PA) and a lateral grayscale image whose drawn structures encode its
findings, and a FINDINGS report that states every finding, present or negated, with phrasings
modelled on real IU-XRay text. Everything is a pure function of (seed, split, index), so a study
does not depend on how many others are generated and re-running gives byte-identical files.

Image convention (as on a radiograph): air is dark, soft tissue grey, bone and metal bright;
the patient's right is on the image's left.
"""
from datasets_registry.synthetic.findings import FINDINGS, Findings, SyntheticStudy
from datasets_registry.synthetic.images import IMAGE_SIZE
from datasets_registry.synthetic.writer import GeneratedPaths, generate, iter_studies, report_corpus

__all__ = ["FINDINGS", "IMAGE_SIZE", "Findings", "GeneratedPaths", "SyntheticStudy", "generate", "iter_studies", "report_corpus"]
