import BatonTensor
import CCUDA
