import BatonTensor
import COpenBLAS
