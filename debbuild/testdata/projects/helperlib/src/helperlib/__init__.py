def greet(): return "hi from helperlib"
