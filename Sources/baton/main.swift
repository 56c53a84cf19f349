import BatonEngine
print("baton")
