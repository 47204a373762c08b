import './base.css';
import './console.css';
import './governance.css';
import './modelsettings.css';
